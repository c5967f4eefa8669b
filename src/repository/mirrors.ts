// Mirrors (pure): the repository's top-level `mirrors`, and the servers of one source or repository URL.
import { rewriteByRules, withSlash, type MirrorRule } from '../http/mirrors.js';
import type { Repository } from './model.js';

export type { MirrorRule };

const isHttpUrl = (text: unknown): text is string => {
  if (typeof text !== 'string') return false;
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
};

/**
 * The repository JSON's `"mirrors": {"<source name>": ["<baseurl>", …]}`. lago ignores unknown top-level keys, so
 * lago still reads such a file. A malformed part is a problem (a warning), never fatal: the primary still works.
 */
export function parseMirrors(
  value: unknown,
  location: string,
): { bySource: Map<string, string[]>; problems: string[] } {
  const bySource = new Map<string, string[]>();
  const problems: string[] = [];
  if (value === undefined) return { bySource, problems };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      bySource,
      problems: [`${location}: mirrors: expected {"<source name>": ["<http(s) base URL>", …]}; mirrors ignored`],
    };
  }
  for (const [source, list] of Object.entries(value)) {
    if (!Array.isArray(list)) {
      problems.push(`${location}: mirrors[${JSON.stringify(source)}]: expected an array of http(s) base URLs; ignored`);
      continue;
    }
    const good = list.filter(isHttpUrl);
    for (const bad of list.filter((item) => !isHttpUrl(item)))
      problems.push(
        `${location}: mirrors[${JSON.stringify(source)}]: not an http(s) URL: ${JSON.stringify(bad)}; ignored`,
      );
    if (good.length) bySource.set(source, good);
  }
  return { bySource, problems };
}

const key = (url: string) => withSlash(url);

/** Distinct by their slash-terminated form, first occurrence kept. */
function distinct(urls: string[]): string[] {
  const seen = new Set<string>();
  return urls.filter((url) => {
    const k = key(url);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The base URLs serving an http source: its baseurl first, then the repository's mirrors, then the config's. */
export function sourceServers(source: { baseurl: string; mirrors?: string[] }, rules: readonly MirrorRule[]): string[] {
  return distinct([source.baseurl, ...(source.mirrors ?? []), ...rewriteByRules(source.baseurl, rules)]);
}

type HttpSource = { baseurl: string; mirrors?: string[] };

/** The http sources of a repository (each once), with their mirrors. */
export function httpSources(repository: Repository | undefined): HttpSource[] {
  const out = new Map<string, HttpSource>();
  for (const template of repository?.templates.values() ?? []) {
    if (!template.ok) continue;
    for (const version of template.value.versions.values()) {
      if (version.ok && version.value.source.type === 'http')
        out.set(version.value.source.baseurl, version.value.source);
    }
  }
  return [...out.values()];
}

/** One mirror's copy of a repository JSON: its URL, and how any URL below the primary maps onto that mirror. */
export interface MirrorCopy {
  url: string;
  rewrite: (url: string) => string | undefined;
}

const rewriter = (from: string, to: string) => (url: string) =>
  url.startsWith(from) ? to + url.slice(from.length) : undefined;

/**
 * Where copies of the repository JSON at `url` may be: the config's rules whose prefix it starts with, and the
 * mirrors of each http source whose baseurl holds the file (a published directory: `<baseurl>/<name>.json`).
 */
export function mirrorCopies(
  url: string,
  rules: readonly MirrorRule[],
  sources: Iterable<HttpSource> = [],
): MirrorCopy[] {
  const copies: MirrorCopy[] = [];
  const add = (from: string, to: string) => {
    const rewrite = rewriter(from, to);
    const copy = rewrite(url);
    if (copy === undefined || key(copy) === key(url) || copies.some((c) => key(c.url) === key(copy))) return;
    copies.push({ url: copy, rewrite });
  };
  for (const rule of rules)
    for (const mirror of rule.mirrors) add(rule.prefix, rule.prefix.endsWith('/') ? withSlash(mirror) : mirror);
  for (const source of sources)
    for (const mirror of source.mirrors ?? []) add(withSlash(source.baseurl), withSlash(mirror));
  return copies;
}

/** The URLs of those copies. */
export function repositoryMirrorUrls(
  url: string,
  rules: readonly MirrorRule[],
  sources: Iterable<HttpSource> = [],
): string[] {
  return mirrorCopies(url, rules, sources).map((copy) => copy.url);
}

// Mirrors (pure): the repository's top-level `mirrors`, and the servers of one source or repository URL.
import { rewriteByRules, type MirrorRule } from '../http/mirrors.js';

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
export function parseMirrors(value: unknown, location: string): { bySource: Map<string, string[]>; problems: string[] } {
  const bySource = new Map<string, string[]>();
  const problems: string[] = [];
  if (value === undefined) return { bySource, problems };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { bySource, problems: [`${location}: mirrors: expected {"<source name>": ["<http(s) base URL>", …]}; mirrors ignored`] };
  }
  for (const [source, list] of Object.entries(value)) {
    if (!Array.isArray(list)) {
      problems.push(`${location}: mirrors[${JSON.stringify(source)}]: expected an array of http(s) base URLs; ignored`);
      continue;
    }
    const good = list.filter(isHttpUrl);
    for (const bad of list.filter((item) => !isHttpUrl(item))) problems.push(`${location}: mirrors[${JSON.stringify(source)}]: not an http(s) URL: ${JSON.stringify(bad)}; ignored`);
    if (good.length) bySource.set(source, good);
  }
  return { bySource, problems };
}

const withSlash = (url: string) => (url.endsWith('/') ? url : `${url}/`);

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

/**
 * Where copies of the repository JSON at `url` may be: the config's rules, and the mirrors of any http source whose
 * baseurl holds the file (a published directory: `<baseurl>/<name>.json`), taken from a copy read before.
 */
export function repositoryMirrorUrls(url: string, rules: readonly MirrorRule[], sources: Iterable<{ baseurl: string; mirrors?: string[] }> = []): string[] {
  const out = rewriteByRules(url, rules);
  for (const source of sources) {
    const base = withSlash(source.baseurl);
    if (!url.startsWith(base)) continue;
    for (const mirror of source.mirrors ?? []) out.push(withSlash(mirror) + url.slice(base.length));
  }
  return distinct(out).filter((candidate) => key(candidate) !== key(url));
}

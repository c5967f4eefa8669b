// Where copies of a repository live (pure): its primary URL, and each mirror with the rewrite from primary URLs to its own.
import { type MirrorRule } from '../http/mirrors.js';
import type { Repository } from '../repository/model.js';

/** One server's copy of a repository: its JSON URL, and how a primary URL (an image) maps onto it. */
export interface Copy {
  server: string;
  role: 'primary' | 'mirror';
  jsonUrl: string;
  rewrite: (url: string) => string | undefined;
}

const withSlash = (url: string) => (url.endsWith('/') ? url : `${url}/`);

/** `host[:port]` and the directory path of a URL, as servers are named in status output and metrics. */
export function serverName(url: string): string {
  const parsed = new URL('.', url);
  const path = parsed.pathname.replace(/\/$/, '');
  return `${parsed.host}${path}`;
}

function rewriter(from: string, to: string): (url: string) => string | undefined {
  return (url) => (url.startsWith(from) ? to + url.slice(from.length) : undefined);
}

/** The http sources of a repository with their mirrors. */
export function httpSources(repository: Repository | undefined): Array<{ baseurl: string; mirrors?: string[] }> {
  const out = new Map<string, { baseurl: string; mirrors?: string[] }>();
  for (const template of repository?.templates.values() ?? []) {
    if (!template.ok) continue;
    for (const version of template.value.versions.values()) {
      if (version.ok && version.value.source.type === 'http') out.set(version.value.source.baseurl, version.value.source);
    }
  }
  return [...out.values()];
}

/**
 * The primary and every mirror of the repository JSON at `url`: the config's rules whose prefix it starts with,
 * and the mirrors of each http source whose baseurl holds the file (the published-directory layout).
 */
export function copiesOf(url: string, rules: readonly MirrorRule[], sources: ReadonlyArray<{ baseurl: string; mirrors?: string[] }>): Copy[] {
  const copies: Copy[] = [{ server: serverName(url), role: 'primary', jsonUrl: url, rewrite: (u) => u }];
  const add = (from: string, to: string) => {
    const rewrite = rewriter(from, to);
    const jsonUrl = rewrite(url);
    if (jsonUrl === undefined || copies.some((copy) => copy.jsonUrl === jsonUrl)) return;
    copies.push({ server: serverName(jsonUrl), role: 'mirror', jsonUrl, rewrite });
  };
  for (const rule of rules) for (const mirror of rule.mirrors) add(rule.prefix, rule.prefix.endsWith('/') ? withSlash(mirror) : mirror);
  for (const source of sources) for (const mirror of source.mirrors ?? []) add(withSlash(source.baseurl), withSlash(mirror));
  return copies;
}

// Where copies of a repository live (pure): its primary URL, and each mirror with the rewrite from primary URLs to its own.
import type { MirrorRule } from '../http/mirrors.js';
import { mirrorCopies } from '../repository/mirrors.js';

/** One server's copy of a repository: its JSON URL, and how a primary URL (an image) maps onto it. */
export interface Copy {
  server: string;
  role: 'primary' | 'mirror';
  jsonUrl: string;
  rewrite: (url: string) => string | undefined;
}

/** `host[:port]` and the directory path of a URL, as servers are named in status output and metrics. */
function serverName(url: string): string {
  const parsed = new URL('.', url);
  const path = parsed.pathname.replace(/\/$/, '');
  return `${parsed.host}${path}`;
}

/** The primary and every mirror of the repository JSON at `url` (see mirrorCopies), named as status names servers. */
export function copiesOf(
  url: string,
  rules: readonly MirrorRule[],
  sources: Iterable<{ baseurl: string; mirrors?: string[] }>,
): Copy[] {
  return [
    { server: serverName(url), role: 'primary', jsonUrl: url, rewrite: (u) => u },
    ...mirrorCopies(url, rules, sources).map(
      (copy): Copy => ({ server: serverName(copy.url), role: 'mirror', jsonUrl: copy.url, rewrite: copy.rewrite }),
    ),
  ];
}

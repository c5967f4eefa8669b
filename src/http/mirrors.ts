// Mirror rules (pure): the config's map from a URL prefix to mirror prefixes, and the rewrite of a URL by them.

/** A config rule: URLs starting with `prefix` are also served below each of `mirrors` (same rest of the path). */
export interface MirrorRule {
  prefix: string;
  mirrors: string[];
}

/** `url` ending in `/`: base URLs and prefixes are compared in this form. */
export const withSlash = (url: string) => (url.endsWith('/') ? url : `${url}/`);

/** `url` rewritten by every rule whose prefix it starts with (a rule's prefix is compared with a trailing slash). */
export function rewriteByRules(url: string, rules: readonly MirrorRule[]): string[] {
  const out: string[] = [];
  for (const rule of rules) {
    const prefix = rule.prefix;
    if (!(url.startsWith(prefix) || withSlash(url) === withSlash(prefix))) continue;
    const rest = url.length >= prefix.length ? url.slice(prefix.length) : '';
    for (const mirror of rule.mirrors)
      out.push(prefix.endsWith('/') && !mirror.endsWith('/') ? `${mirror}/${rest}` : mirror + rest);
  }
  return out;
}

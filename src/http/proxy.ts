// Proxy choice from HTTP_PROXY / HTTPS_PROXY / NO_PROXY (pure), the way curl and most tools read them.

export type ProxyEnv = Record<string, string | undefined>;

function read(env: ProxyEnv, name: string): string | undefined {
  const value = env[name.toLowerCase()] ?? env[name.toUpperCase()];
  return value?.trim() ? value.trim() : undefined;
}

/** True when NO_PROXY names this host: `*`, exact host, a domain suffix (`.example.org` or `example.org`), optionally with `:port`. */
export function bypassesProxy(url: URL, env: ProxyEnv): boolean {
  const noProxy = read(env, 'no_proxy');
  if (!noProxy) return false;
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  return noProxy
    .split(/[\s,]+/)
    .filter(Boolean)
    .some((rawEntry) => {
      if (rawEntry === '*') return true;
      let entry = rawEntry.toLowerCase();
      const portMatch = /^(.*?)(?::(\d+))?$/.exec(entry.replace(/^\[|\]$/g, ''));
      if (portMatch?.[2] && !entry.includes('::')) {
        if (portMatch[2] !== port) return false;
        entry = portMatch[1] ?? entry;
      }
      entry = entry.replace(/^\*?\./, '').replace(/^\[|\]$/g, '');
      return host === entry || host.endsWith(`.${entry}`);
    });
}

/** The proxy URL to use for `url`, or undefined for a direct connection. */
export function proxyFor(url: URL, env: ProxyEnv): string | undefined {
  if (bypassesProxy(url, env)) return undefined;
  return url.protocol === 'https:'
    ? (read(env, 'https_proxy') ?? read(env, 'all_proxy'))
    : (read(env, 'http_proxy') ?? read(env, 'all_proxy'));
}

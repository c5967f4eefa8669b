// Credentials for HTTP requests: per URL prefix from the config file, ~/.netrc by host, TEMPLATES_TOKEN on a Bearer challenge.
import { join } from 'node:path';
import { fsSync } from '../util/builtins.js';

/** One configured credential: a bearer token, or a user and password (Basic), for every URL starting with `prefix`. */
export interface Credential {
  prefix: string;
  token?: string;
  username?: string;
  password?: string;
}

export interface Credentials {
  /** The Authorization header to send with a request to `url` from the start, if any. */
  forUrl(url: URL): string | undefined;
  /**
   * What to do after `url` answered 401 with this WWW-Authenticate: retry with a header (TEMPLATES_TOKEN), or get a
   * token from the challenge's realm with Basic credentials first (a templates server, like a registry), or nothing.
   */
  onChallenge(url: URL, challenge: string | undefined): Challenged | undefined;
}

type Challenged = { authorization: string } | { tokenUrl: string; basic: string };

/** The realm of a `Bearer realm="…"` challenge when it is an http(s) URL (where tokens are handed out). */
function bearerRealm(challenge: string | undefined): string | undefined {
  const realm = /^bearer\b.*?\brealm="([^"]+)"/i.exec(challenge ?? '')?.[1];
  return realm && /^https?:\/\//i.test(realm) ? realm : undefined;
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

function header(credential: Credential): string | undefined {
  if (credential.token) return `Bearer ${credential.token}`;
  if (credential.username !== undefined) return basic(credential.username, credential.password ?? '');
  return undefined;
}

/** The machines of a netrc file (pure): `machine HOST login USER password PASS`, and `default`. */
function parseNetrc(text: string): Map<string, { login: string; password: string }> {
  const tokens = text.replace(/#.*$/gm, '').split(/\s+/).filter(Boolean);
  const out = new Map<string, { login: string; password: string }>();
  let host: string | undefined;
  let entry = { login: '', password: '' };
  const flush = () => {
    if (host !== undefined && !out.has(host)) out.set(host, entry);
  };
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token === 'machine' || token === 'default') {
      flush();
      host = token === 'default' ? '' : tokens[++i];
      entry = { login: '', password: '' };
    } else if (token === 'login') entry.login = tokens[++i] ?? '';
    else if (token === 'password') entry.password = tokens[++i] ?? '';
    else if (token === 'macdef') break;
  }
  flush();
  return out;
}

/**
 * The credentials a client sends: the longest configured prefix that matches, else the netrc entry of the host
 * (sent only over https, or to loopback); the given token only once a server asks for a Bearer token.
 */
export function createCredentials(options: {
  configured?: Credential[];
  /** Answered to a server that asks for a bearer token. */
  token?: string;
  env: Record<string, string | undefined>;
  home: string;
}): Credentials {
  const configured = [...(options.configured ?? [])].sort((a, b) => b.prefix.length - a.prefix.length);
  let netrc: Map<string, { login: string; password: string }> | undefined;
  const netrcEntries = () => {
    if (!netrc) {
      try {
        netrc = parseNetrc(fsSync().readFileSync(options.env.NETRC || join(options.home, '.netrc'), 'utf8'));
      } catch {
        netrc = new Map();
      }
    }
    return netrc;
  };
  const { token } = options;
  const safe = (url: URL) => url.protocol === 'https:' || ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
  const configuredFor = (url: URL) => configured.find((credential) => url.href.startsWith(credential.prefix));
  const netrcFor = (url: URL) => {
    const machine = netrcEntries().get(url.hostname) ?? netrcEntries().get('');
    return safe(url) && machine?.login ? basic(machine.login, machine.password) : undefined;
  };
  return {
    forUrl(url) {
      const match = configuredFor(url);
      if (match) return header(match);
      return netrcFor(url);
    },
    onChallenge(url, challenge) {
      if (!/^bearer\b/i.test(challenge ?? '')) return undefined;
      if (token) return { authorization: `Bearer ${token}` };
      const realm = bearerRealm(challenge);
      const match = configuredFor(url);
      const credentials = match?.username !== undefined ? header(match) : match ? undefined : netrcFor(url);
      // Basic credentials go to the realm only on the same origin as the request.
      return realm && credentials?.startsWith('Basic ') && new URL(realm).origin === url.origin
        ? { tokenUrl: realm, basic: credentials }
        : undefined;
    },
  };
}

// Registry auth as registries do it: a WWW-Authenticate challenge, then Basic or a Bearer token per scope (cached).
import { TemplatesError, redactUrl } from '../errors.js';
import type { HttpClient } from '../http/client.js';
import { readLimited } from '../util/read-limited.js';
import type { RegistryLogin } from './credentials.js';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="…",service="…",scope="…"` (quoted values may hold commas). */
export function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  const text = Array.isArray(header) ? header[0] : header;
  const match = text ? /^\s*(\w+)\s*(.*)$/.exec(text) : null;
  if (!match) return undefined;
  const params: Record<string, string> = {};
  for (const [, key, quoted, bare] of match[2]!.matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g))
    params[key!.toLowerCase()] = quoted ?? bare ?? '';
  return { scheme: match[1]!.toLowerCase(), params };
}

const ACTION_ORDER = ['pull', 'push'];

/**
 * Scopes merged per resource, actions in one order: `repository:a:pull,push` and a challenge's `repository:a:push,pull`
 * (distribution lists actions in map order, so either) are one scope, asked once.
 */
export function mergeScopes(scopes: string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of scopes) {
    const at = scope.lastIndexOf(':');
    if (at <= 0) {
      byResource.set(scope, byResource.get(scope) ?? new Set());
      continue;
    }
    const actions = byResource.get(scope.slice(0, at)) ?? new Set<string>();
    for (const action of scope.slice(at + 1).split(',')) if (action) actions.add(action);
    byResource.set(scope.slice(0, at), actions);
  }
  const rank = (action: string) => (ACTION_ORDER.includes(action) ? ACTION_ORDER.indexOf(action) : ACTION_ORDER.length);
  return [...byResource].map(([resource, actions]) =>
    actions.size
      ? `${resource}:${[...actions].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0)).join(',')}`
      : resource,
  );
}

export const basicOf = (login: RegistryLogin) =>
  `Basic ${Buffer.from(`${login.username}:${login.password}`).toString('base64')}`;

export function authRefused(url: string, status: number, login: RegistryLogin | undefined): TemplatesError {
  return new TemplatesError(
    'AUTH_FAILED',
    `${redactUrl(url)}: HTTP ${status}: the registry ${login ? `refused the credentials from ${login.from}` : 'needs credentials'}`,
    {
      url: redactUrl(url),
      status,
      hint: 'log in (skopeo login, docker login: ~/.docker/config.json, $REGISTRY_AUTH_FILE), or give --creds-file FILE or "auth" for its URL in the config file',
    },
  );
}

/** Asks the challenge's realm for a token for `scopes` (with the login as Basic when there is one). */
export async function fetchToken(
  http: HttpClient,
  challenge: Challenge,
  scopes: string[],
  login: RegistryLogin | undefined,
  signal?: AbortSignal,
): Promise<string> {
  const realm = challenge.params.realm;
  if (!realm || !/^https?:\/\//.test(realm))
    throw new TemplatesError(
      'AUTH_FAILED',
      `the registry's Bearer challenge has no usable realm: ${JSON.stringify(realm ?? '')}`,
      {},
    );
  const url = new URL(realm);
  if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
  for (const scope of scopes) url.searchParams.append('scope', scope);
  const response = await http.send(url.toString(), {
    method: 'GET',
    ...(signal ? { signal } : {}),
    ...(login ? { authorization: basicOf(login) } : {}),
  });
  const body = await readLimited(response.body, 1024 * 1024, signal).catch(() => Buffer.alloc(0));
  if (response.status === 401 || response.status === 403) throw authRefused(url.toString(), response.status, login);
  let token: unknown;
  try {
    const data = JSON.parse(body.toString('utf8')) as { token?: unknown; access_token?: unknown };
    token = data.token ?? data.access_token;
  } catch {
    token = undefined;
  }
  if (response.status !== 200 || typeof token !== 'string' || !token) {
    throw new TemplatesError(
      'AUTH_FAILED',
      `${redactUrl(url.toString())}: HTTP ${response.status}: no token in the answer`,
      { url: redactUrl(url.toString()), status: response.status, hint: "check the registry's token service" },
    );
  }
  return `Bearer ${token}`;
}

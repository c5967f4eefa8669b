// The dashboard's access to the API: the token kept in sessionStorage (never in a URL), JSON requests, the event stream.

const KEY = 'templates.session';

export class Unauthorized extends Error {}

/** { token, user, expires } of this tab, or null. */
export function session() {
  try {
    const value = JSON.parse(sessionStorage.getItem(KEY) ?? 'null');
    return value && value.expires > Date.now() ? value : null;
  } catch {
    return null;
  }
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

/** Trades the user and password (HTTP Basic) for a bearer token at /auth_token; only the token is kept. */
export async function signIn(user, password) {
  const basic = btoa(String.fromCodePoint(...new TextEncoder().encode(`${user}:${password}`)));
  // X-Requested-With: the server then leaves out its Basic challenge, which would make the browser prompt.
  const response = await fetch('/auth_token', {
    headers: { authorization: `Basic ${basic}`, 'x-requested-with': 'templates-dashboard' },
    cache: 'no-store',
  });
  if (!response.ok) {
    throw new Error(
      response.status === 401
        ? 'Wrong user or password.'
        : response.status === 429
          ? 'Too many attempts: wait a minute and try again.'
          : `The server answered ${response.status}.`,
    );
  }
  const body = await response.json();
  sessionStorage.setItem(
    KEY,
    JSON.stringify({ token: body.auth_token, user, expires: Date.now() + body.expires_in * 1000 }),
  );
}

function headers(extra = {}) {
  const current = session();
  return current ? { ...extra, authorization: `Bearer ${current.token}` } : extra;
}

/** The JSON at `path`; Unauthorized on 401, an Error with `status` and `code` on any other failure. */
export async function api(path, init = {}) {
  const response = await fetch(path, { ...init, headers: headers(init.headers), cache: 'no-store' });
  if (response.status === 401) throw new Unauthorized(path);
  const body = (response.headers.get('content-type') ?? '').includes('json') ? await response.json() : null;
  if (!response.ok) {
    throw Object.assign(new Error(body?.error?.message ?? `${path}: HTTP ${response.status}`), {
      status: response.status,
      code: body?.error?.code,
    });
  }
  return body;
}

/** One server-sent event block: its name and parsed data, or null for a comment. */
function parseBlock(block) {
  let name = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) name = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  return data ? { name, data: JSON.parse(data) } : null;
}

/**
 * Follows /api/1/events until `signal` aborts, calling onEvent(name, data); reconnects 2 s after a drop (the
 * `hello` event of each connection says to reload the lists). Read with fetch: EventSource cannot send a token.
 */
export async function followEvents(onEvent, signal) {
  while (!signal.aborted) {
    try {
      const response = await fetch('/api/1/events', {
        headers: headers({ accept: 'text/event-stream' }),
        signal,
        cache: 'no-store',
      });
      if (response.status === 401) throw new Unauthorized('/api/1/events');
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const event = parseBlock(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (event) onEvent(event.name, event.data);
        }
      }
    } catch (error) {
      if (error instanceof Unauthorized) throw error;
    }
    if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

// An OCI distribution client for one registry: manifests (verified), blobs (HEAD, GET with Range, upload, mount), tags, catalog.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { TemplatesError, abortError, isTemplatesError, redactUrl } from '../errors.js';
import type { HttpClient, HttpResponse, HttpSendOptions } from '../http/client.js';
import { mapHttpError } from '../http/client.js';
import { readLimited } from '../util/read-limited.js';
import { authRefused, basicOf, fetchToken, mergeScopes, parseChallenge } from './auth.js';
import type { RegistryLogin } from './credentials.js';
import { MAX_MANIFEST_BYTES, checkManifest, type Manifest } from './manifest.js';
import { MANIFEST_ACCEPT } from './media-types.js';
import { registryUrl } from './reference.js';

export interface RegistryOptions {
  http: HttpClient;
  host: string;
  insecure?: boolean;
  /** The login for this registry (docker/containers auth files, --creds-file), looked up once when first needed. */
  login?: () => Promise<RegistryLogin | undefined>;
}

type Body = () => Buffer | Readable;

interface Call {
  method: HttpSendOptions['method'];
  scopes: string[];
  headers?: Record<string, string>;
  body?: Body;
  signal?: AbortSignal;
}

const pull = (name: string) => `repository:${name}:pull`;
const push = (name: string) => `repository:${name}:pull,push`;

export { MAX_MANIFEST_BYTES, type Manifest };

export type Registry = ReturnType<typeof createRegistry>;

export function createRegistry(options: RegistryOptions) {
  const base = registryUrl(options.host, options.insecure);
  const { http } = options;
  // Authorization per scope set: tokens are scoped, and a 401 naming another scope asks again.
  const tokens = new Map<string, string>();
  let login: Promise<RegistryLogin | undefined> | undefined;
  const getLogin = () => (login ??= options.login?.() ?? Promise.resolve(undefined));

  /** One request, answering the registry's challenges: Basic with the login, or a Bearer token for the scopes. */
  async function call(url: string, c: Call): Promise<HttpResponse> {
    const key = c.scopes.join(' ');
    let authorization = tokens.get(key);
    for (let attempt = 0; ; attempt++) {
      let response: HttpResponse;
      try {
        response = await http.send(url, {
          method: c.method,
          ...(c.headers ? { headers: c.headers } : {}),
          ...(c.body ? { body: c.body() } : {}),
          ...(c.signal ? { signal: c.signal } : {}),
          ...(authorization ? { authorization } : {}),
        });
      } catch (error) {
        throw mapHttpError(error, url, c.signal);
      }
      if (response.status !== 401) return response;
      response.body.destroy();
      const challenge = parseChallenge(response.headers['www-authenticate']);
      const who = await getLogin();
      if (attempt >= 2 || !challenge) throw authRefused(url, 401, who);
      let next: string | undefined;
      if (challenge.scheme === 'bearer') {
        const asked = challenge.params.scope ? challenge.params.scope.split(' ') : c.scopes;
        next = await fetchToken(http, challenge, mergeScopes([...c.scopes, ...asked]), who, c.signal);
      } else if (challenge.scheme === 'basic' && who) {
        next = basicOf(who);
      }
      if (!next || (next === authorization && attempt > 0)) throw authRefused(url, 401, who);
      authorization = next;
      tokens.set(key, next);
    }
  }

  /** GET (or HEAD) following redirects itself: Authorization never goes to another host (blob GETs are often sent to a CDN). */
  async function follow(url: string, c: Call): Promise<HttpResponse> {
    let response = await call(url, c);
    let current = url;
    for (let hops = 0; response.status >= 300 && response.status < 400 && response.headers.location; hops++) {
      response.body.destroy();
      const next = new URL(String(response.headers.location), current);
      if (hops >= 5 || (next.protocol !== 'http:' && next.protocol !== 'https:')) {
        throw new TemplatesError('SOURCE_HTTP_ERROR', `${redactUrl(url)}: too many or unsupported redirects`, {
          url: redactUrl(url),
        });
      }
      const sameHost = next.origin === new URL(current).origin;
      current = next.toString();
      response = sameHost
        ? await call(current, c)
        : await http
            .send(current, {
              method: c.method,
              anonymous: true,
              ...(c.headers ? { headers: c.headers } : {}),
              ...(c.signal ? { signal: c.signal } : {}),
            })
            .catch((error: unknown) => {
              throw mapHttpError(error, current, c.signal);
            });
    }
    return response;
  }

  async function failure(
    response: HttpResponse,
    url: string,
    what: string,
    signal?: AbortSignal,
  ): Promise<TemplatesError> {
    const text = await readLimited(response.body, 64 * 1024, signal)
      .then((b) => b.toString('utf8'))
      .catch(() => '');
    let detail = '';
    try {
      const first = (JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> }).errors?.[0];
      if (first) detail = `: ${first.code ?? ''} ${first.message ?? ''}`.trimEnd();
    } catch {
      detail = '';
    }
    const shown = redactUrl(url);
    if (response.status === 404)
      return new TemplatesError('IMAGE_NOT_FOUND', `${shown}: ${what} not found${detail}`, {
        url: shown,
        status: 404,
        hint: 'check the name, tag or digest: templates index --registry lists what the registry has',
      });
    if (response.status === 403) return authRefused(url, 403, await getLogin());
    return new TemplatesError('SOURCE_HTTP_ERROR', `${shown}: HTTP ${response.status}${detail}`, {
      url: shown,
      status: response.status,
      hint: 'the registry failed; try again later or ask its owner',
    });
  }

  const at = (path: string) => `${base}/v2/${path}`;
  const absolute = (location: string) => new URL(location, base).toString();

  return {
    base,
    host: options.host,
    blobUrl: (name: string, digest: string) => at(`${name}/blobs/${digest}`),

    /** The manifest at a tag or digest, its bytes checked against the digest asked for (or the one the registry names). */
    async manifest(name: string, reference: string, signal?: AbortSignal): Promise<Manifest> {
      const url = at(`${name}/manifests/${reference}`);
      const response = await follow(url, {
        method: 'GET',
        scopes: [pull(name)],
        headers: { accept: MANIFEST_ACCEPT },
        ...(signal ? { signal } : {}),
      });
      if (response.status !== 200) throw await failure(response, url, 'manifest', signal);
      const bytes = await readLimited(response.body, MAX_MANIFEST_BYTES, signal).catch((error: unknown) => {
        throw signal?.aborted
          ? abortError(signal)
          : new TemplatesError(
              'SOURCE_HTTP_ERROR',
              `${redactUrl(url)}: manifest larger than ${MAX_MANIFEST_BYTES} bytes or cut short`,
              { url: redactUrl(url) },
              { cause: error },
            );
      });
      const claimed = reference.startsWith('sha256:')
        ? reference
        : typeof response.headers['docker-content-digest'] === 'string'
          ? response.headers['docker-content-digest']
          : undefined;
      return checkManifest(bytes, redactUrl(url), claimed, response.headers['content-type']);
    },

    /** The digest a tag names now (HEAD, without reading the manifest), or undefined when the registry does not say. */
    async manifestDigest(name: string, reference: string, signal?: AbortSignal): Promise<string | undefined> {
      const url = at(`${name}/manifests/${reference}`);
      const response = await follow(url, {
        method: 'HEAD',
        scopes: [pull(name)],
        headers: { accept: MANIFEST_ACCEPT },
        ...(signal ? { signal } : {}),
      });
      response.body.destroy();
      if (response.status !== 200) throw await failure(response, url, 'manifest', signal);
      const digest = response.headers['docker-content-digest'];
      return typeof digest === 'string' && /^sha256:[a-f0-9]{64}$/.test(digest) ? digest : undefined;
    },

    async putManifest(
      name: string,
      reference: string,
      bytes: Buffer,
      mediaType: string,
      signal?: AbortSignal,
    ): Promise<string> {
      const url = at(`${name}/manifests/${reference}`);
      const response = await call(url, {
        method: 'PUT',
        scopes: [push(name)],
        headers: { 'content-type': mediaType },
        body: () => bytes,
        ...(signal ? { signal } : {}),
      });
      if (response.status !== 201 && response.status !== 200)
        throw await failure(response, url, 'manifest upload', signal);
      response.body.destroy();
      return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    },

    /** The blob's size when the registry has it, else undefined. */
    async blobSize(name: string, digest: string, signal?: AbortSignal): Promise<number | undefined> {
      const url = at(`${name}/blobs/${digest}`);
      const response = await follow(url, { method: 'HEAD', scopes: [pull(name)], ...(signal ? { signal } : {}) });
      response.body.destroy();
      if (response.status === 404) return undefined;
      if (response.status !== 200) throw await failure(response, url, 'blob', signal);
      return response.size;
    },

    /** The blob's bytes from `offset` (never past its end: distribution's 416 carries a wrong Content-Length). */
    async openBlob(
      name: string,
      digest: string,
      options: { offset?: number; signal?: AbortSignal } = {},
    ): Promise<{ url: string; response: HttpResponse; offset: number }> {
      const url = at(`${name}/blobs/${digest}`);
      const offset = options.offset ?? 0;
      const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
      const response = await follow(url, {
        method: 'GET',
        scopes: [pull(name)],
        headers,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      if (response.status === 206 && offset > 0) return { url, response, offset };
      if (response.status === 200) return { url, response, offset: 0 };
      throw await failure(response, url, 'blob', options.signal);
    },

    /** Mounts a blob from another repository of the same registry; false when the registry started an upload instead. */
    async mountBlob(name: string, digest: string, from: string, signal?: AbortSignal): Promise<boolean> {
      const url = at(`${name}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`);
      const response = await call(url, {
        method: 'POST',
        scopes: [push(name), pull(from)],
        body: () => Buffer.alloc(0),
        ...(signal ? { signal } : {}),
      });
      response.body.destroy();
      if (response.status === 201) return true;
      if (response.status === 202) {
        // An upload session was opened instead: close it so it does not linger.
        const location = response.headers.location;
        if (typeof location === 'string')
          await call(absolute(location), {
            method: 'DELETE',
            scopes: [push(name)],
            ...(signal ? { signal } : {}),
          }).then(
            (r) => r.body.destroy(),
            () => undefined,
          );
        return false;
      }
      return false;
    },

    /**
     * Uploads a blob: POST for a session, then one PUT with the bytes (distribution ignores a POST with ?digest= and a
     * body), or PATCH chunks of `chunkBytes` and a closing PUT for larger blobs. `open(start, end)` reads that range.
     */
    async uploadBlob(
      name: string,
      digest: string,
      size: number,
      open: (start: number, end: number) => Readable,
      options: { chunkBytes: number; signal?: AbortSignal; onBytes?: (bytes: number) => void },
    ): Promise<void> {
      const { signal } = options;
      const start = at(`${name}/blobs/uploads/`);
      const opened = await call(start, {
        method: 'POST',
        scopes: [push(name)],
        body: () => Buffer.alloc(0),
        ...(signal ? { signal } : {}),
      });
      if (opened.status !== 202) throw await failure(opened, start, 'upload', signal);
      opened.body.destroy();
      let location = absolute(String(opened.headers.location ?? ''));
      const withDigest = (url: string) => `${url}${url.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
      if (size <= options.chunkBytes) {
        const response = await call(withDigest(location), {
          method: 'PUT',
          scopes: [push(name)],
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
          body: () => open(0, size),
          ...(signal ? { signal } : {}),
        });
        if (response.status !== 201) throw await failure(response, location, 'blob upload', signal);
        response.body.destroy();
        options.onBytes?.(size);
        return;
      }
      for (let offset = 0; offset < size; offset += options.chunkBytes) {
        const end = Math.min(size, offset + options.chunkBytes);
        const response = await call(location, {
          method: 'PATCH',
          scopes: [push(name)],
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': String(end - offset),
            'content-range': `${offset}-${end - 1}`,
          },
          body: () => open(offset, end),
          ...(signal ? { signal } : {}),
        });
        if (response.status !== 202) throw await failure(response, location, 'blob chunk upload', signal);
        response.body.destroy();
        location = absolute(String(response.headers.location ?? location));
        options.onBytes?.(end);
      }
      const closed = await call(withDigest(location), {
        method: 'PUT',
        scopes: [push(name)],
        headers: { 'content-length': '0' },
        body: () => Buffer.alloc(0),
        ...(signal ? { signal } : {}),
      });
      if (closed.status !== 201) throw await failure(closed, location, 'blob upload', signal);
      closed.body.destroy();
    },

    /** Every tag of a repository, sorted (distribution 2.8 neither pages nor sorts; `Link` is followed where sent). */
    async tags(name: string, signal?: AbortSignal): Promise<string[]> {
      return sorted(await pages(at(`${name}/tags/list`), [pull(name)], 'tags', signal));
    },

    /** Every repository of the registry (the catalog, following `Link` pages). */
    async catalog(signal?: AbortSignal): Promise<string[]> {
      return sorted(await pages(at('_catalog?n=1000'), ['registry:catalog:*'], 'repositories', signal));
    },
  };

  async function pages(
    first: string,
    scopes: string[],
    field: 'tags' | 'repositories',
    signal?: AbortSignal,
  ): Promise<string[]> {
    const out: string[] = [];
    let url: string | undefined = first;
    for (let page = 0; url && page < 1000; page++) {
      const response: HttpResponse = await follow(url, { method: 'GET', scopes, ...(signal ? { signal } : {}) });
      if (response.status !== 200)
        throw await failure(response, url, field === 'tags' ? 'tag list' : 'catalog', signal);
      const bytes = await readLimited(response.body, MAX_MANIFEST_BYTES, signal);
      try {
        const list = (JSON.parse(bytes.toString('utf8')) as Record<string, unknown>)[field];
        if (Array.isArray(list)) out.push(...list.filter((item): item is string => typeof item === 'string'));
      } catch (error) {
        if (isTemplatesError(error)) throw error;
      }
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(response.headers.link ?? ''));
      url = link ? absolute(link[1]!) : undefined;
    }
    return out;
  }
}

const sorted = (items: string[]) => [...new Set(items)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

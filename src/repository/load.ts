// Load one repository from a file path or an http(s) URL; HTTP copies are cached in the store for offline use.
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { TemplatesError, abortError, isTemplatesError, redactUrl } from '../errors.js';
import { createContext, type Context } from '../context.js';
import { authFailed } from '../http/client.js';
import { TooLargeError, readLimited } from '../util/read-limited.js';
import type { TrustState } from '../trust/check.js';
import { withSignature, type SignedOptions } from './signed.js';
import type { CachedRepository, RepositoryCache } from './cache.js';
import type { Repository } from './model.js';
import { parseRepository } from './parse.js';
import { httpSources, repositoryMirrorUrls } from './mirrors.js';

/** Repository files larger than this are refused before parsing. */
export const MAX_REPOSITORY_BYTES = 64 * 1024 * 1024;

export interface LoadOptions {
  context?: Context;
  /** A store (from openStore): repositories fetched over HTTP are cached in it and read back when the network is down. */
  store?: { repositoryCache: RepositoryCache; trustState?: TrustState };
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
  /** Never use the network: an HTTP repository comes from the store's cached copy, or fails with OFFLINE. */
  offline?: boolean;
  /** A cached copy younger than this is used without asking the server (default 0: always ask). */
  ttlMs?: number;
  /** Ask the server even when the cached copy is young. */
  refresh?: boolean;
}

type Loader = LoadOptions & { ctx: Context };

const isUrl = (location: string) => /^https?:\/\//i.test(location);

function tooLarge(location: string): TemplatesError {
  return new TemplatesError(
    'REPO_INVALID',
    `${location}: repository file is larger than ${MAX_REPOSITORY_BYTES} bytes`,
    {
      file: location,
      hint: 'this is not a repository JSON file',
    },
  );
}

async function loadFile(path: string, options: Loader): Promise<Repository> {
  let text: string;
  try {
    const info = await stat(path);
    if (info.size > MAX_REPOSITORY_BYTES) throw tooLarge(path);
    text = await readFile(path, { encoding: 'utf8', ...(options.signal ? { signal: options.signal } : {}) });
  } catch (error) {
    if (options.signal?.aborted) throw abortError(options.signal);
    if (isTemplatesError(error)) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new TemplatesError(
      code === 'ENOENT' ? 'REPO_NOT_FOUND' : 'REPO_INVALID',
      `${path}: cannot read repository: ${code ?? String(error)}`,
      {
        file: path,
        hint: 'check the --repo / --repos paths and TEMPLATES_REPOS',
      },
      { cause: error },
    );
  }
  const parse = (body: string, shown: string) =>
    parseRepository(body, shown, { env: options.ctx.env, home: options.ctx.home, allowFileSources: true });
  const signature = () => fileSignature(path);
  return (
    await withSignature(
      {
        repository: parse(text, path),
        text,
        location: path,
        shown: path,
        signatureAt: `${path}.minisig`,
        signature,
        parse,
      },
      signedOptions(options),
    )
  ).repository;
}

/** The `.minisig` beside a repository file, or undefined when there is none. */
function fileSignature(path: string): Promise<string | undefined> {
  return readFile(`${path}.minisig`, 'utf8').catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TemplatesError(
      'REPO_SIGNATURE_INVALID',
      `${path}.minisig: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      { file: `${path}.minisig` },
      { cause: error },
    );
  });
}

const signedOptions = (options: Loader): SignedOptions => ({
  ctx: options.ctx,
  ...(options.store?.trustState ? { state: options.store.trustState } : {}),
  ...(options.onWarning ? { onWarning: options.onWarning } : {}),
});

/** A `.minisig` beside a served JSON: its text, or undefined when the server has none (404/410). */
async function downloadSignature(url: string, options: Loader, retries?: number): Promise<string | undefined> {
  try {
    return await download(url, options, retries);
  } catch (error) {
    if (isTemplatesError(error) && error.code === 'REPO_NOT_FOUND') return undefined;
    throw error;
  }
}

async function download(url: string, options: Loader, retries?: number): Promise<string> {
  const shown = redactUrl(url);
  const response = await options.ctx.http.get(url, {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(retries !== undefined ? { retries } : {}),
  });
  if (response.status < 200 || response.status >= 300) {
    response.body.destroy();
    if (response.status === 401 || response.status === 403) throw authFailed(url, response.status);
    const notFound = response.status === 404 || response.status === 410;
    throw new TemplatesError(notFound ? 'REPO_NOT_FOUND' : 'SOURCE_HTTP_ERROR', `${shown}: HTTP ${response.status}`, {
      url: shown,
      status: response.status,
    });
  }
  if ((response.size ?? 0) > MAX_REPOSITORY_BYTES) {
    response.body.destroy();
    throw tooLarge(shown);
  }
  const type = String(response.headers['content-type'] ?? '');
  if (/text\/html/i.test(type)) {
    response.body.destroy();
    throw new TemplatesError('REPO_INVALID', `${shown}: served as HTML, not a repository JSON`, {
      url: shown,
      hint: 'a captive portal or a wrong URL; check the URL in a browser',
    });
  }
  try {
    return (await readLimited(response.body, MAX_REPOSITORY_BYTES, options.signal)).toString('utf8');
  } catch (error) {
    if (error instanceof TooLargeError) throw tooLarge(shown);
    if (options.signal?.aborted) throw abortError(options.signal);
    throw new TemplatesError(
      'SOURCE_UNREACHABLE',
      `${shown}: download interrupted: ${(error as Error).message}`,
      { url: shown },
      { cause: error },
    );
  }
}

const safeParse = (parse: (text: string) => Repository, text: string) => {
  try {
    return parse(text);
  } catch {
    return undefined;
  }
};

/** Failures of the primary after which a mirror is asked for the JSON. */
const MIRROR_WORTHY = new Set(['SOURCE_UNREACHABLE', 'SOURCE_HTTP_ERROR', 'REPO_NOT_FOUND']);

/**
 * The JSON from its URL, else (down, failing or missing there) from a mirror: the config's rules, and the mirrors the
 * cached copy declares for the source whose baseurl holds the file. That copy is parsed only once the URL failed; while
 * a mirror may answer, the URL gets no retries.
 */
async function downloadFromAny(
  url: string,
  cached: string | undefined,
  parse: (text: string) => Repository,
  options: Loader,
): Promise<{ text: string; from: string }> {
  const mayHaveMirrors =
    repositoryMirrorUrls(url, options.ctx.mirrors).length > 0 || Boolean(cached?.includes('"mirrors"'));
  if (!mayHaveMirrors) return { text: await download(url, options), from: url };
  let first: unknown;
  try {
    return { text: await download(url, options, 0), from: url };
  } catch (error) {
    if (options.signal?.aborted) throw abortError(options.signal);
    if (!isTemplatesError(error) || !MIRROR_WORTHY.has(error.code)) throw error;
    first = error;
  }
  const failures = [(first as Error).message];
  const mirrors = repositoryMirrorUrls(
    url,
    options.ctx.mirrors,
    httpSources(cached === undefined ? undefined : safeParse(parse, cached)),
  );
  for (const [index, candidate] of mirrors.entries()) {
    try {
      const text = await download(candidate, options, index === mirrors.length - 1 ? undefined : 0);
      options.onWarning?.(
        `${redactUrl(url)}: ${failures.join('; ')}; using the copy at mirror ${redactUrl(candidate)}`,
      );
      return { text, from: candidate };
    } catch (error) {
      if (options.signal?.aborted) throw abortError(options.signal);
      if (!isTemplatesError(error) || !MIRROR_WORTHY.has(error.code)) throw error;
      failures.push(error.message);
    }
  }
  throw first;
}

async function loadUrl(url: string, options: Loader): Promise<Repository> {
  const shown = redactUrl(url);
  const cache = options.store?.repositoryCache;
  const parseAt = (text: string, at: string) =>
    parseRepository(text, at, { env: options.ctx.env, home: options.ctx.home, allowFileSources: false });
  const parse = (text: string) => parseAt(text, shown);
  // A cache host's upstream copy is read for its names and digests only: its file sources are no error there.
  const parseUpstream = (text: string, at: string) =>
    parseRepository(text, at, { env: options.ctx.env, home: options.ctx.home, allowFileSources: true });
  const cached = await cache?.read(url);
  // A cached copy is checked as a served one is: with the signature cached beside it.
  const fromCache = async (copy: CachedRepository) =>
    (
      await withSignature(
        {
          repository: parse(copy.body),
          text: copy.body,
          location: url,
          shown,
          signatureAt: `${url}.minisig (cached)`,
          signature: async () => copy.signature,
          parse: parseUpstream,
          upstream: async () => {
            if (copy.upstream) return copy.upstream;
            throw new TemplatesError(
              'REPO_UNSIGNED',
              `${shown}: the cached copy has no cached upstream copy to check`,
              { url: shown, hint: 'load it once with the network' },
            );
          },
        },
        signedOptions(options),
      )
    ).repository;
  if (options.offline) {
    if (cached) return fromCache(cached);
    throw new TemplatesError('OFFLINE', `offline: ${shown} is needed and the store has no cached copy of it`, {
      url: shown,
      hint: 'run once with the network to cache it, or drop --offline / TEMPLATES_OFFLINE',
    });
  }
  const age = cached ? options.ctx.now() - Date.parse(cached.fetchedAt) : Infinity;
  if (cached && !options.refresh && age >= 0 && age < (options.ttlMs ?? 0)) return fromCache(cached);
  let served: { text: string; from: string };
  try {
    served = await downloadFromAny(url, cached?.body, parse, options);
  } catch (error) {
    const unreachable =
      isTemplatesError(error) && (error.code === 'SOURCE_UNREACHABLE' || error.code === 'SOURCE_HTTP_ERROR');
    if (!cached || !unreachable) throw error;
    options.onWarning?.(
      `${shown}: unreachable, using the copy cached at ${cached.fetchedAt} (${(error as Error).message})`,
    );
    return fromCache(cached);
  }
  const { text, from } = served;
  // The signature comes from the server that served the JSON (a mirror's copy is checked against the mirror's .minisig).
  let signature: string | undefined;
  const { repository, upstreamCopy } = await withSignature(
    {
      repository: parse(text),
      text,
      location: url,
      shown,
      signatureAt: `${from}.minisig`,
      parse: parseUpstream,
      signature: async () => (signature = await downloadSignature(`${from}.minisig`, options)),
      upstream: async (relative) => {
        const at = new URL(relative, from).href;
        const upstreamSignature = await downloadSignature(`${at}.minisig`, options);
        return {
          url: at,
          text: await download(at, options),
          ...(upstreamSignature !== undefined ? { signature: upstreamSignature } : {}),
        };
      },
    },
    signedOptions(options),
  );
  if (cache) {
    const fetchedAt = new Date(options.ctx.now()).toISOString();
    await cache
      .write(url, {
        url: shown,
        fetchedAt,
        body: text,
        ...(signature !== undefined ? { signature } : {}),
        ...(upstreamCopy ? { upstream: upstreamCopy } : {}),
      })
      .catch((error: unknown) => {
        options.onWarning?.(`could not cache ${shown} in the store: ${(error as Error).message}`);
      });
  }
  return repository;
}

/** Loads a repository from a path, a file:// URL or an http(s) URL. */
export async function loadRepository(location: string, options: LoadOptions = {}): Promise<Repository> {
  const loader: Loader = { ...options, ctx: options.context ?? createContext() };
  if (isUrl(location)) return loadUrl(location, loader);
  if (/^file:\/\//i.test(location)) return loadFile(fileURLToPath(location), loader);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw new TemplatesError(
      'USAGE',
      `unsupported repository location ${redactUrl(location)} (use a path or an http(s) URL)`,
      { url: redactUrl(location) },
    );
  }
  return loadFile(location, loader);
}

/**
 * The `.minisig` beside a repository location as it is (a URL's `URL.minisig`, or the file's), or undefined when there is
 * none; `retries` as for a download (status asks once).
 */
export async function readRepositorySignature(
  location: string,
  options: LoadOptions & { retries?: number } = {},
): Promise<string | undefined> {
  if (!isUrl(location)) return fileSignature(location).catch(() => undefined);
  return downloadSignature(
    `${location}.minisig`,
    { ...options, ctx: options.context ?? createContext() },
    options.retries,
  );
}

// Read one copy of a repository JSON (HTTP or a local file) and what status reports of it: latency, validators, counts.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Context } from '../context.js';
import { TemplatesError, abortError, isTemplatesError, redactUrl } from '../errors.js';
import { MAX_REPOSITORY_BYTES } from '../repository/load.js';
import type { Repository } from '../repository/model.js';
import { parseRepository } from '../repository/parse.js';
import { readLimited } from '../util/read-limited.js';

export interface CopyReading {
  reachable: boolean;
  httpStatus: number | null;
  latencySeconds: number | null;
  error: { code: string; message: string } | null;
  repository: Repository | null;
  digest: string | null;
  lastModified: string | null;
  etag: string | null;
  /** The JSON as served (to check its signature), when it was read. */
  text: string | null;
}

const failed = (error: unknown, extra: Partial<CopyReading> = {}): CopyReading => ({
  reachable: false,
  httpStatus: null,
  latencySeconds: null,
  repository: null,
  digest: null,
  lastModified: null,
  etag: null,
  text: null,
  error: isTemplatesError(error)
    ? { code: error.code, message: error.message }
    : { code: 'INTERNAL', message: String(error) },
  ...extra,
});

function parsed(
  ctx: Context,
  text: string,
  location: string,
  local: boolean,
): Pick<CopyReading, 'repository' | 'digest' | 'error'> {
  const digest = `sha256:${createHash('sha256').update(text).digest('hex')}`;
  try {
    return {
      repository: parseRepository(text, location, { env: ctx.env, home: ctx.home, allowFileSources: local }),
      digest,
      error: null,
    };
  } catch (error) {
    return {
      repository: null,
      digest,
      error: isTemplatesError(error)
        ? { code: error.code, message: error.message }
        : { code: 'REPO_INVALID', message: String(error) },
    };
  }
}

/** A copy over HTTP, within `timeoutMs` (no retries: status reports what a fetch would meet first). */
export async function readHttpCopy(
  ctx: Context,
  url: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<CopyReading> {
  const shown = redactUrl(url);
  const limit = AbortSignal.timeout(timeoutMs);
  const both = signal ? AbortSignal.any([signal, limit]) : limit;
  const started = performance.now();
  try {
    const response = await ctx.http.get(url, { signal: both, retries: 0 });
    const latencySeconds = (performance.now() - started) / 1000;
    const header = (name: string) =>
      typeof response.headers[name] === 'string' ? (response.headers[name] as string) : null;
    const base = {
      httpStatus: response.status,
      latencySeconds,
      lastModified: header('last-modified'),
      etag: header('etag'),
    };
    if (response.status < 200 || response.status >= 300) {
      response.body.destroy();
      return failed(
        new TemplatesError(
          response.status === 404 ? 'REPO_NOT_FOUND' : 'SOURCE_HTTP_ERROR',
          `${shown}: HTTP ${response.status}`,
        ),
        { ...base, reachable: true },
      );
    }
    const text = (await readLimited(response.body, MAX_REPOSITORY_BYTES, both)).toString('utf8');
    return { reachable: true, ...base, text, ...parsed(ctx, text, shown, false) };
  } catch (error) {
    if (signal?.aborted) throw abortError(signal);
    const why = limit.aborted
      ? new TemplatesError('SOURCE_UNREACHABLE', `${shown}: no answer within ${timeoutMs / 1000} s`)
      : error;
    return failed(why);
  }
}

/** A local repository file: always "reachable"; its counts and digest. */
export async function readLocalCopy(ctx: Context, path: string): Promise<CopyReading> {
  try {
    const text = await readFile(path, 'utf8');
    return {
      reachable: true,
      httpStatus: null,
      latencySeconds: null,
      lastModified: null,
      etag: null,
      text,
      ...parsed(ctx, text, path, true),
    };
  } catch (error) {
    return failed(
      new TemplatesError(
        'REPO_NOT_FOUND',
        `${path}: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      ),
    );
  }
}

/** Templates, versions, the newest version's timestamp and the sum of declared sizes. */
export function countRepository(repository: Repository | null): {
  templates: number;
  versions: number;
  newest: number | null;
  rootSize: number;
} {
  let templates = 0;
  let versions = 0;
  let newest: number | null = null;
  let rootSize = 0;
  for (const template of repository?.templates.values() ?? []) {
    if (!template.ok) continue;
    templates++;
    for (const version of template.value.versions.values()) {
      if (!version.ok) continue;
      versions++;
      newest = newest === null ? version.value.timestamp : Math.max(newest, version.value.timestamp);
      rootSize += version.value.size ?? 0;
    }
  }
  return { templates, versions, newest, rootSize };
}

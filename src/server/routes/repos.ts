// /repos/: the served repositories in lago's format, each version's image, image.xz, image.zst, .hash, .metadata and
// .caibx, and each repository's default.castr/ (routes/repo-chunks.ts).
import { ReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { open, type FileHandle } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { basename, dirname } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TemplatesError } from '../../errors.js';
import { pumpFile, type PumpOptions } from '../../fetch/file-pump.js';
import { readSidecar } from '../../fetch/sidecar.js';
import { readQcow2 } from '../../manage/qcow2.js';
import { readRepositorySignature } from '../../repository/load.js';
import { entryName, partialPath } from '../../store/layout.js';
import type { VersionKey } from '../../repository/reference.js';
import { neighbourJson } from '../catalogue.js';
import type { ServerDeps } from '../deps.js';
import { followPull } from '../follow.js';
import { sendError } from '../http-status.js';
import { CHUNK_FILE, serveChunk, serveIndex } from './repo-chunks.js';
import { hrefName, segmentsBelow } from '../request-path.js';
import type { FileSource } from '../served-version.js';

const FILES = ['image', 'image.xz', 'image.zst', 'image.hash', 'image.metadata'] as const;
const CONTENT_TYPE: Partial<Record<string, string>> = {
  'image.xz': 'application/x-xz',
  'image.zst': 'application/zstd',
};
type FileName = (typeof FILES)[number];
/** How long a request for a file being pulled waits before it is told to come back. */
const RETRY_AFTER_SECONDS = 2;

function notFound(reply: FastifyReply, what: string): FastifyReply {
  return sendError(
    reply,
    new TemplatesError('IMAGE_NOT_FOUND', `${what} is not served here`, {
      hint: 'see GET /repos/ for the served repositories',
    }),
  );
}

/**
 * The response's body from an open file through reused buffers (fetch/file-pump.ts), instead of a read stream's new
 * buffer per MiB; the headers are out already, so a failure can only cut the response (the client's check then fails).
 */
async function pumpBody(res: ServerResponse, file: string | FileHandle, options: PumpOptions): Promise<void> {
  const handle =
    typeof file === 'string' ? await open(file, 'r').catch((error: unknown) => void res.destroy(error as Error)) : file;
  if (!handle) return;
  await pumpFile(handle, res, options)
    .catch((error: unknown) => res.destroy(error as Error))
    .finally(() => handle.close());
}

/**
 * A stored file with Range, ETag, Last-Modified, If-Range and If-None-Match (@fastify/send's answer; the bytes by
 * pumpBody), counted as `file` and for the client `format` that asked (lago's repositories, simplestreams, …).
 */
export async function sendStored(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ServerDeps,
  path: string,
  file: string,
  format = 'lago',
  /** What to answer when the file is gone (removed since the inventory's snapshot); default 404. */
  missing?: () => Promise<FastifyReply>,
): Promise<FastifyReply> {
  const { default: send } = await import('@fastify/send');
  const { statusCode, headers, stream } = await send(request.raw, `/${encodeURIComponent(basename(path))}`, {
    root: dirname(path),
    dotfiles: 'allow',
    cacheControl: false,
    index: false,
  });
  if (statusCode === 404) {
    if (stream instanceof Readable) stream.destroy();
    return missing ? missing() : notFound(reply, file);
  }
  // Counted once sent: a 'data' listener on the file stream measurably slows it.
  const length = Number(headers['content-length'] ?? headers['Content-Length']);
  if (request.method === 'GET' && Number.isFinite(length))
    reply.raw.once('finish', () => {
      deps.metrics.servedBytes.inc({ file }, length);
      deps.metrics.formatBytes.inc({ format }, length);
      deps.metrics.formatRequests.inc({ format });
    });
  const all = { ...headers, 'content-type': CONTENT_TYPE[file] ?? 'application/octet-stream' };
  const range = /^bytes (\d+)-\d+\//.exec(String(headers['content-range'] ?? headers['Content-Range'] ?? ''));
  const start = statusCode === 206 ? Number(range?.[1]) : 0;
  if (
    !(stream instanceof ReadStream) ||
    (statusCode !== 200 && statusCode !== 206) ||
    !Number.isSafeInteger(start) ||
    !Number.isSafeInteger(length)
  ) {
    return reply.code(statusCode).headers(all).send(stream);
  }
  // The bytes (all, or the range asked for) through reused buffers instead of send's read stream.
  stream.destroy();
  reply.hijack();
  reply.raw.writeHead(statusCode, all);
  await pumpBody(reply.raw, path, { start, end: start + length });
  return reply;
}

/** A file of a version not stored: join (or start) its pull; `.xz` (or `.zst`) bytes flow as they arrive. */
async function pulled(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ServerDeps,
  key: VersionKey,
  file: FileName,
): Promise<FastifyReply> {
  const busy = () =>
    reply
      .code(503)
      .header('retry-after', String(RETRY_AFTER_SECONDS))
      .type('application/json')
      .send({
        error: {
          code: 'PULL_IN_PROGRESS',
          message: `${entryName(key)} is being fetched from upstream`,
          hint: `ask again in ${RETRY_AFTER_SECONDS} s`,
        },
      });
  // HEAD never starts a download.
  if (request.method === 'HEAD') return busy();
  const pull = deps.pulls.start(key);
  const serveStored = async () => {
    await deps.inventory.refreshEntry(key);
    const source = (await deps.catalogue()).version(key)?.files[file];
    if (source?.kind === 'stored') return sendStored(request, reply, deps, source.path, file);
    return notFound(reply, `${entryName(key)}/${file}`);
  };
  if (file === 'image') {
    // A short pull ends within a second: answer it now rather than send the client away.
    const outcome =
      pull.state.outcome ??
      (await Promise.race([
        pull.done,
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1000).unref()),
      ]));
    if (!outcome) return busy();
    if (!outcome.ok) return sendError(reply, outcome.error);
    return serveStored();
  }
  const suffix = file === 'image.zst' ? '.zst' : '.xz';
  const followed = await followPull(pull, partialPath(deps.store.root, key), suffix, deps.shutdown);
  if (followed === 'done') return serveStored();
  if (followed === 'elsewhere')
    return notFound(reply, `${entryName(key)}/${file} (this pull downloads another form from upstream: ask for image)`);
  reply.hijack();
  reply.raw.writeHead(200, { 'content-type': CONTENT_TYPE[file]!, 'cache-control': 'no-store' });
  await pumpBody(reply.raw, followed.handle, {
    end: followed.end,
    signal: followed.signal,
    onBytes: (bytes) => {
      deps.metrics.servedBytes.inc({ file }, bytes);
      deps.metrics.formatBytes.inc({ format: 'lago' }, bytes);
    },
  });
  deps.metrics.formatRequests.inc({ format: 'lago' });
  return reply;
}

async function serveFile(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ServerDeps,
  key: VersionKey,
  file: FileName,
): Promise<FastifyReply> {
  const cat = await deps.catalogue();
  const version = cat.version(key);
  if (!version) return notFound(reply, entryName(key));
  const source: FileSource = version.files[file];
  switch (source.kind) {
    case 'stored':
      // Gone since the snapshot (evicted to make room, rm or prune by another process): look again, and pull it.
      return sendStored(request, reply, deps, source.path, file, 'lago', async () => {
        await deps.inventory.refreshEntry(key);
        const again = (await deps.catalogue()).version(key)?.files[file];
        if (again?.kind === 'pull') return pulled(request, reply, deps, key, file);
        if (again?.kind === 'stored') return sendStored(request, reply, deps, again.path, file);
        return notFound(reply, `${entryName(key)}/${file}`);
      });
    case 'text':
      return reply.type(file === 'image.metadata' ? 'application/json' : 'text/plain').send(source.text);
    case 'upstream': {
      const version = cat.upstream(key);
      const text = version
        ? await readSidecar(version, file === 'image.metadata' ? 'metadata' : 'hash', {
            what: entryName(key),
            store: deps.store,
            context: deps.context,
            signal: deps.shutdown,
          })
        : undefined;
      return text === undefined
        ? notFound(reply, `${entryName(key)}/${file}`)
        : reply.type(file === 'image.metadata' ? 'application/json' : 'text/plain').send(text);
    }
    case 'pull':
      return pulled(request, reply, deps, key, file);
    case 'absent':
      return notFound(reply, `${entryName(key)}/${file}`);
  }
}

/** The upstream JSON exactly as loaded, and its `.minisig` passed through unchanged (read from upstream when asked). */
async function upstreamFile(
  reply: FastifyReply,
  deps: ServerDeps,
  name: string,
  file: 'upstream.json' | 'upstream.json.minisig',
): Promise<FastifyReply> {
  const repository = (await deps.catalogue()).repository(name);
  if (repository?.text === undefined) return notFound(reply, `${name}/${file}`);
  if (file === 'upstream.json') return reply.type('application/json').send(repository.text);
  const signature = await readRepositorySignature(repository.location, {
    context: deps.context,
    signal: deps.shutdown,
  });
  return signature === undefined ? notFound(reply, `${name}/${file}`) : reply.type('text/plain').send(signature);
}

export function reposRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.get('/repos/', async (request, reply) => {
    const cat = await deps.catalogue();
    const base = deps.baseUrl(request);
    return reply.send({
      repositories: cat.names().map((name) => ({ name, url: `${base}/repos/${hrefName(name)}.json` })),
    });
  });
  app.get('/repos/*', async (request, reply) => {
    const segments = segmentsBelow(
      request.url,
      '/repos/',
      (segment, index) =>
        /^[A-Za-z0-9._+-]+$/.test(segment) &&
        segment !== '.' &&
        segment !== '..' &&
        (index < 3 ||
          (FILES as readonly string[]).includes(segment) ||
          /^image\.qcow2(\.xz)?(\.hash|\.metadata)?$/.test(segment) ||
          /^image\.xz\.(hash|metadata)$/.test(segment) ||
          segment === 'image.caibx' ||
          CHUNK_FILE.test(segment)),
    );
    if (!segments.ok)
      return sendError(
        reply,
        new TemplatesError('USAGE', `bad path: ${segments.why}`, {
          hint: 'paths are /repos/REPO.json and /repos/REPO/TEMPLATE/VERSION/FILE',
        }),
      );
    const names = segments.names;
    try {
      if (names.length === 1 && names[0]!.endsWith('.json')) {
        const name = names[0]!.slice(0, -'.json'.length);
        const catalogue = await deps.catalogue();
        const versions = catalogue.versions(name);
        if (!versions)
          return sendError(
            reply,
            new TemplatesError('REPO_NOT_FOUND', `no repository "${name}" is served here`, {
              repository: name,
              hint: 'see GET /repos/',
            }),
          );
        const upstream = catalogue.repository(name)?.text !== undefined ? `${hrefName(name)}/upstream.json` : undefined;
        return reply
          .type('application/json')
          .send(neighbourJson(name, versions, `${deps.baseUrl(request)}/repos/${hrefName(name)}/`, upstream));
      }
      if (names.length === 2 && (names[1] === 'upstream.json' || names[1] === 'upstream.json.minisig'))
        return await upstreamFile(reply, deps, names[0]!, names[1]);
      if (names.length !== 4) return notFound(reply, request.url.split('?', 1)[0]!);
      const [repository, template, version, file] = names as [string, string, string, string];
      if (template === 'default.castr') return await serveChunk(reply, deps, repository, version, file);
      if (file === 'image.caibx') return await serveIndex(reply, deps, { repository, template, version });
      if (file.startsWith('image.qcow2')) {
        // A job's qcow2 rendition and its digest: served once made, never pulled (nor compressed).
        const rendition = await readQcow2(deps.store, { repository, template, version });
        if (rendition && file === 'image.qcow2') return await sendStored(request, reply, deps, rendition.path, file);
        if (rendition && file === 'image.qcow2.hash') return reply.type('text/plain').send(`${rendition.hash}\n`);
        return notFound(reply, `${entryName({ repository, template, version })}/${file}`);
      }
      if (!(FILES as readonly string[]).includes(file)) return notFound(reply, file);
      return await serveFile(request, reply, deps, { repository, template, version }, file as FileName);
    } catch (error) {
      if (reply.sent) return reply;
      return sendError(reply, error);
    }
  });
}

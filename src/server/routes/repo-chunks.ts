// /repos/REPO/T/V/image.caibx and /repos/REPO/default.castr/<4 hex>/<id>.cacnk: casync's index and chunk store, served.
import type { FastifyReply } from 'fastify';
import { TemplatesError } from '../../errors.js';
import type { VersionSpec } from '../../repository/model.js';
import type { VersionKey } from '../../repository/reference.js';
import { entryName } from '../../store/layout.js';
import type { ServerDeps } from '../deps.js';
import { sendError } from '../http-status.js';

/** A chunk file's name below `default.castr/<4 hex>/`. */
export const CHUNK_FILE = /^([0-9a-f]{64})\.cacnk$/;

const notServed = (reply: FastifyReply, what: string) =>
  sendError(
    reply,
    new TemplatesError('IMAGE_NOT_FOUND', `${what} is not served here`, {
      hint: 'a chunk index is served for versions whose repository lists one (templates index)',
    }),
  );

/** The version's index: the one kept beside the stored image, else upstream's (checked against its digest). */
export async function serveIndex(reply: FastifyReply, deps: ServerDeps, key: VersionKey): Promise<FastifyReply> {
  const catalogue = await deps.catalogue();
  const version = catalogue.version(key);
  const image = version?.files.image;
  const data = version
    ? await deps.chunks.index(key, catalogue.upstream(key), image?.kind === 'stored' ? image.path : undefined)
    : undefined;
  if (!data) return notServed(reply, `${entryName(key)}/image.caibx`);
  return reply.type('application/octet-stream').send(data);
}

/** One chunk of the repository's indexes: cut from a stored image, or pulled from upstream once. */
export async function serveChunk(
  reply: FastifyReply,
  deps: ServerDeps,
  repository: string,
  prefix: string,
  file: string,
): Promise<FastifyReply> {
  const id = CHUNK_FILE.exec(file)?.[1];
  if (!id || id.slice(0, 4) !== prefix) return notServed(reply, `${repository}/default.castr/${prefix}/${file}`);
  const catalogue = await deps.catalogue();
  const upstreams = (catalogue.versions(repository) ?? [])
    .map((version) => catalogue.upstream(version.key))
    .filter((spec): spec is VersionSpec => spec?.caibx !== undefined);
  const { entries } = await deps.inventory.get();
  const chunk = await deps.chunks.chunk(repository, id, entries, upstreams);
  if (!chunk) return notServed(reply, `chunk ${id} of ${repository}`);
  reply.raw.once('finish', () => {
    deps.metrics.chunkBytes.inc({ kind: 'served' }, chunk.file.length);
    deps.metrics.formatBytes.inc({ format: 'casync' }, chunk.file.length);
    deps.metrics.formatRequests.inc({ format: 'casync' });
  });
  // A chunk is named by its content: it never changes.
  return reply
    .type('application/octet-stream')
    .header('cache-control', 'public, max-age=31536000, immutable')
    .send(chunk.file);
}

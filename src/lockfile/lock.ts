// lockTemplates: resolves references to pins (exact version, source URL, digests, size, format, revision); kept pins stay unless updated.
import type { Context } from '../context.js';
import { TemplatesError } from '../errors.js';
import { resolveTemplate } from '../fetch/describe.js';
import { parseDigest } from '../repository/digest.js';
import type { Repository } from '../repository/model.js';
import { RepositorySet } from '../repository/set.js';
import { LOCKFILE_VERSION, type LockFile, type Pin } from './file.js';

export interface LockOptions {
  repositories: RepositorySet | Repository[];
  context?: Context;
  signal?: AbortSignal;
  /** The lock so far: its pins are kept as they are unless `update` names them. */
  existing?: LockFile;
  /** Re-resolve pins: true for every pin, or the references (as asked) to re-resolve. */
  update?: boolean | string[];
  /** Do not read `.hash` files: only the digests the repository JSON gives are pinned. */
  offline?: boolean;
}

/** `algo:hex` always (lago's SHA-1 is bare hex elsewhere). */
function qualified(text: string | null): string | null {
  const digest = text === null ? undefined : parseDigest(text);
  return digest ? `${digest.algorithm}:${digest.hex}` : null;
}

/** Resolves one reference to a pin; a version with no digest at all cannot be pinned (HASH_MISSING). */
async function pinOf(asked: string, repositories: RepositorySet, options: LockOptions): Promise<Pin> {
  const resolution = await resolveTemplate(asked, {
    repositories,
    ...(options.context ? { context: options.context } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.offline ? { offline: true } : {}),
  });
  if (!resolution.hash && !resolution.compressedHash) {
    throw new TemplatesError(
      'HASH_MISSING',
      `${resolution.ref}: no digest to pin (the repository gives none${options.offline ? ', and --offline reads no .hash file' : ' and there is no .hash file'})`,
      {
        ref: resolution.ref,
        hint: options.offline ? 'lock it with the network' : 'ask the owner to publish hashes',
      },
    );
  }
  const revision = repositories.get(resolution.repository)?.revision;
  return {
    ref: resolution.ref,
    repository: resolution.repository,
    template: resolution.template,
    version: resolution.version,
    source: resolution.urls[0] ?? '',
    hash: qualified(resolution.hash),
    compressed_hash: qualified(resolution.compressedHash),
    ...(resolution.zst ? { zst_hash: resolution.zst.hash } : {}),
    size: resolution.size,
    format: resolution.format,
    revision: revision ?? null,
  };
}

/** The lock for `refs` (and the existing pins): new references are resolved, kept ones stay unless `update` names them. */
export async function lockTemplates(refs: string[], options: LockOptions): Promise<LockFile> {
  const repositories = RepositorySet.from(options.repositories, 'lockTemplates');
  const kept = options.existing?.templates ?? {};
  const update = options.update ?? false;
  const asked = [...new Set([...Object.keys(kept), ...refs])];
  if (Array.isArray(update)) {
    const unknown = update.filter((ref) => !asked.includes(ref));
    if (unknown.length)
      throw new TemplatesError('USAGE', `--update ${unknown.join(' ')}: not in the lock file`, {
        hint: `pinned: ${Object.keys(kept).join(', ') || 'nothing'}`,
      });
  }
  const templates: Record<string, Pin> = {};
  for (const ref of asked) {
    const again = update === true || (Array.isArray(update) && update.includes(ref)) || !kept[ref];
    templates[ref] = again ? await pinOf(ref, repositories, options) : kept[ref]!;
  }
  return { lockfileVersion: LOCKFILE_VERSION, templates };
}

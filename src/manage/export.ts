// export: write stored templates as a repository directory (multi-block xz, zst, .hash, .metadata, JSON with a file source).
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createContext, type Context } from '../context.js';
import { outputIoError } from '../errors.js';
import { packImage } from '../publish/pack.js';
import type { IndexProgressCallback } from '../publish/progress.js';
import { repositoryJson, type IndexedVersion } from '../publish/repository-json.js';
import { checkFormats, type IndexFormat } from '../publish/index-options.js';
import { DEFAULT_ZSTD_LEVEL, compressOptions, findEncoders, type CompressChoices } from '../publish/xz.js';
import type { RepositorySet } from '../repository/set.js';
import { entryName } from '../store/layout.js';
import { notStored, readSettledEntry, type Store } from '../store/store.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { storedKey } from './refs.js';

export interface ExportOptions extends CompressChoices {
  /** The directory the repository files and images are written to. */
  dir: string;
  store: Store;
  /** As index: xz always, zst too by default (`zstdLevel`, default 19). */
  formats?: readonly IndexFormat[];
  zstdLevel?: number;
  /** For short references and version timestamps; a stored entry of an unconfigured repository keeps its fetch time. */
  repositories?: RepositorySet;
  context?: Context;
  signal?: AbortSignal;
  onProgress?: IndexProgressCallback;
}

export interface ExportSummary {
  dir: string;
  /** One repository JSON per repository exported from. */
  repositories: Array<{ name: string; file: string; versions: string[] }>;
  bytesOut: number;
}

/** The handle of an exported entry below DIR: `<repo>/<template>/<version>/image.raw`. */
const exportHandle = (key: { repository: string; template: string; version: string }) =>
  `${key.repository}/${key.template}/${key.version}/image.raw`;

/**
 * Writes each stored entry of `refs` into `dir` as a repository another host can fetch from (`--repos DIR` or
 * `--repo DIR/<repo>.json`): its `file` source root is `.`, relative to the JSON, so the directory can be
 * copied or mounted anywhere. Fetching from it gives the stored raw image back byte for byte.
 */
export async function exportTemplates(refs: string[], options: ExportOptions): Promise<ExportSummary> {
  const ctx = options.context ?? createContext();
  const root = resolve(options.dir);
  const { xz, zstd } = await findEncoders('export', ctx.env.PATH, checkFormats(options));
  const byRepository = new Map<string, IndexedVersion[]>();
  let bytesOut = 0;
  for (const ref of refs) {
    const key = storedKey(ref, options.repositories);
    const entry = await readSettledEntry(options.store, key);
    if (!entry) throw notStored(options.store, key, 'see: templates list --stored');
    const handle = exportHandle(key);
    const target = join(root, handle);
    await mkdir(dirname(target), { recursive: true }).catch((error: unknown) => {
      throw outputIoError(error, dirname(target), 'cannot create');
    });
    const packed = await packImage({
      input: { path: entry.path, xz: false },
      output: `${target}.xz`,
      compress: true,
      xz,
      compression: compressOptions(options),
      ...(options.signal ? { signal: options.signal } : {}),
      onBytes: (bytes) => options.onProgress?.({ ref: entryName(key), phase: 'compress', bytes, total: entry.size }),
      ...(zstd ? { zst: { output: `${target}.zst`, zstd, level: options.zstdLevel ?? DEFAULT_ZSTD_LEVEL } } : {}),
    });
    bytesOut += packed.compressedSize + (packed.zst?.size ?? 0);
    const version = options.repositories?.version(key);
    const fetchedAt = entry.record?.fetchedAt ? Date.parse(entry.record.fetchedAt) : Date.now();
    const timestamp = version ? version.timestamp : Math.floor(fetchedAt / 1000);
    const metadata = {
      ...(typeof entry.metadata === 'object' && entry.metadata !== null ? entry.metadata : {}),
      size: packed.size,
      format: 'raw',
      sha256: packed.sha256,
      compressed_size: packed.compressedSize,
      timestamp,
    };
    const write = (path: string, text: string) =>
      writeFileAtomic(path, text).catch((error: unknown) => {
        throw outputIoError(error, path, 'cannot write');
      });
    await write(`${target}.hash`, packed.sha1);
    await write(`${target}.metadata`, `${JSON.stringify(metadata, null, 2)}\n`);
    const versions = byRepository.get(key.repository) ?? [];
    versions.push({
      template: key.template,
      version: key.version,
      handle,
      timestamp,
      sha1: packed.sha1,
      compressedSha256: packed.compressedSha256,
      ...(packed.zst ? { zst: packed.zst } : {}),
      size: packed.size,
      format: 'raw',
    });
    byRepository.set(key.repository, versions);
    options.onProgress?.({ ref: entryName(key), phase: 'indexed', status: 'compressed' });
  }
  const repositories: ExportSummary['repositories'] = [];
  for (const [name, versions] of byRepository) {
    const file = join(root, `${name}.json`);
    await writeFileAtomic(file, repositoryJson(name, { type: 'file', root: '.' }, versions)).catch((error: unknown) => {
      throw outputIoError(error, file, 'cannot write');
    });
    repositories.push({ name, file, versions: versions.map((v) => `${name}:${v.template}:${v.version}`) });
  }
  return { dir: root, repositories, bytesOut };
}

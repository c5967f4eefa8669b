// push: a stored template to an OCI registry as our artifact (config blob, one multi-block .xz or .zst layer, manifest).
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { createContext, findExecutable, type Context } from '../context.js';
import { TemplatesError } from '../errors.js';
import { configBlob, sha256Of, templateManifest, type LayerCompression, type TemplateConfig } from '../oci/artifact.js';
import { registryLogin } from '../oci/credentials.js';
import { OCI_MANIFEST } from '../oci/media-types.js';
import { formatOciReference, parseOciReference } from '../oci/reference.js';
import { createRegistry, type Registry } from '../oci/registry.js';
import { packImage } from '../publish/pack.js';
import { DEFAULT_ZSTD_LEVEL, compressOptions } from '../publish/xz.js';
import type { RepositorySet } from '../repository/set.js';
import { compressedPath, entryName, pushedBlobsPath, tempDir, type VersionKey } from '../store/layout.js';
import { keptFile } from '../store/record.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { readSettledEntry, type Store, type StoredEntry } from '../store/store.js';
import { containerDiskImage } from './container-disk-image.js';
import { hashSparseFile } from '../fetch/sparse-hash.js';
import { storedKey } from './refs.js';
import { toolMissing } from '../util/tools.js';

export interface PushOptions {
  store: Store;
  repositories?: RepositorySet;
  context?: Context;
  signal?: AbortSignal;
  /** Plain HTTP to a registry that is not on loopback. */
  insecure?: boolean;
  /** A registry auth file (docker config.json format) read before the usual ones. */
  credsFile?: string;
  /** The layer's compression: `xz` (the default; every templates version reads it) or `zst` (four times faster to unpack). */
  layer?: LayerCompression;
  /** Push a KubeVirt containerDisk image (a gzip tar layer of /disk/disk.img, qcow2, uid 107) instead of our artifact. */
  containerDisk?: boolean;
  /** Layers larger than this go up in PATCH chunks of this size (default 64 MiB). */
  chunkBytes?: number;
  onProgress?: (event: { ref: string; phase: 'compress' | 'upload'; bytes: number; total: number }) => void;
}

export interface PushResult {
  ref: string;
  /** `oci://HOST/NAME@sha256:…`: what a fetch can name for exactly this push. */
  reference: string;
  digest: string;
  layer: { digest: string; size: number };
  /** Blobs sent, and their bytes; blobs mounted from another repository this store pushed them to; blobs already there. */
  uploaded: number;
  uploadedBytes: number;
  mounted: number;
  skipped: number;
}

/**
 * The `.xz` (or `.zst`) to push: the kept one when it is the raw image's, else compressed now into the store's temp dir
 * (xz in 16 MiB blocks; zstd -19 --long=27, as index writes them).
 */
async function layerFile(
  ctx: Context,
  store: Store,
  key: VersionKey,
  entry: StoredEntry,
  ref: string,
  options: PushOptions,
) {
  const record = entry.record;
  const compression = options.layer ?? 'xz';
  const keptXz = keptFile(record);
  const kept =
    keptXz?.compression === compression && record!.sourceFormat === 'raw'
      ? compressedPath(store.root, key, compression)
      : undefined;
  if (kept && (await stat(kept).catch(() => undefined))) {
    // The raw digest the store recorded (sha256, or lago's sha1) is enough: reading 2 GiB again to learn another took longer than the upload.
    const known = /^(sha256|sha1):/.exec(record!.stored?.digest ?? '')?.[1] as 'sha256' | 'sha1' | undefined;
    const raw: { sha256?: string; sha1?: string } = known
      ? { [known]: record!.stored!.digest }
      : await hashSparseFile(ctx.qemuImg, entry.path, ['sha256', 'sha1'], options.signal).then((h) => ({
          sha256: `sha256:${h.sha256}`,
          sha1: `sha1:${h.sha1}`,
        }));
    return { path: kept, digest: keptXz!.digest, size: keptXz!.size, raw, temporary: false, compression };
  }
  const tool = compression === 'zst' ? 'zstd' : 'xz';
  const command = await findExecutable(tool, ctx.env.PATH);
  if (!command) throw toolMissing(tool, `templates push needs the ${tool} command to compress the image`);
  await mkdir(tempDir(store.root), { recursive: true });
  const path = join(tempDir(store.root), `push-${process.pid}-${randomBytes(4).toString('hex')}.${compression}`);
  const packed = await packImage({
    input: { path: entry.path, xz: false },
    output: path,
    compress: compression === 'xz',
    xz: command,
    compression: compressOptions({}),
    ...(compression === 'zst' ? { zst: { output: path, zstd: command, level: DEFAULT_ZSTD_LEVEL } } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    onBytes: (bytes) => options.onProgress?.({ ref, phase: 'compress', bytes, total: entry.size }),
  });
  const layer =
    compression === 'zst'
      ? { sha256: packed.zst!.sha256, size: packed.zst!.size }
      : { sha256: packed.compressedSha256, size: packed.compressedSize };
  return {
    path,
    digest: `sha256:${layer.sha256}`,
    size: layer.size,
    raw: { sha256: `sha256:${packed.sha256}`, sha1: `sha1:${packed.sha1}` },
    temporary: true,
    compression,
  };
}

type Pushed = Record<string, Record<string, string>>;

/** Where this store pushed blobs before (best effort: an unreadable file is empty). */
async function readPushed(store: Store): Promise<Pushed> {
  try {
    const data = JSON.parse(await readFile(pushedBlobsPath(store.root), 'utf8')) as unknown;
    return typeof data === 'object' && data !== null ? (data as Pushed) : {};
  } catch {
    return {};
  }
}

async function recordPushed(store: Store, host: string, name: string, digests: string[]): Promise<void> {
  const pushed = await readPushed(store);
  pushed[host] = { ...pushed[host], ...Object.fromEntries(digests.map((digest) => [digest, name])) };
  const path = pushedBlobsPath(store.root);
  await mkdir(dirname(path), { recursive: true })
    .then(() => writeFileAtomic(path, `${JSON.stringify(pushed)}\n`))
    .catch(() => undefined);
}

/**
 * Makes one blob present in `name`: nothing when the registry has it there, a cross-repository mount when this store
 * pushed it to another repository of the registry, else an upload. 'sent' when bytes went up.
 */
async function ensureBlob(
  registry: Registry,
  name: string,
  blob: { digest: string; size: number },
  from: string | undefined,
  open: (start: number, end: number) => Readable,
  chunkBytes: number,
  signal?: AbortSignal,
  onBytes?: (bytes: number) => void,
): Promise<'present' | 'mounted' | 'sent'> {
  if ((await registry.blobSize(name, blob.digest, signal)) !== undefined) return 'present';
  if (from && from !== name && (await registry.mountBlob(name, blob.digest, from, signal))) return 'mounted';
  await registry.uploadBlob(name, blob.digest, blob.size, open, {
    chunkBytes,
    ...(signal ? { signal } : {}),
    ...(onBytes ? { onBytes } : {}),
  });
  return 'sent';
}

/** A blob to push: its digest and size, and how to read a range of it. */
interface Blob {
  digest: string;
  size: number;
  open: (start: number, end: number) => Readable;
}

const fileBlob = (path: string, digest: string, size: number): Blob => ({
  digest,
  size,
  open: (start, end) => createReadStream(path, { start, end: end - 1, highWaterMark: 1024 * 1024 }),
});
const bufferBlob = (bytes: Buffer): Blob => ({
  digest: sha256Of(bytes),
  size: bytes.length,
  open: (start, end) => Readable.from([bytes.subarray(start, end)]),
});

/** The blobs (present ones skipped, known ones mounted, the rest uploaded), then the manifest under the tag. */
async function pushBlobs(
  store: Store,
  registry: Registry,
  destination: { host: string; name: string; tag: string },
  blobs: Blob[],
  manifest: Buffer,
  options: PushOptions & { ref: string },
): Promise<Omit<PushResult, 'ref' | 'layer'>> {
  const { signal } = options;
  const chunkBytes = options.chunkBytes ?? 64 * 1024 * 1024;
  const known = (await readPushed(store))[destination.host] ?? {};
  const done: Array<'present' | 'mounted' | 'sent'> = [];
  for (const blob of blobs) {
    done.push(
      await ensureBlob(registry, destination.name, blob, known[blob.digest], blob.open, chunkBytes, signal, (bytes) =>
        options.onProgress?.({ ref: options.ref, phase: 'upload', bytes, total: blob.size }),
      ),
    );
  }
  const digest = await registry.putManifest(destination.name, destination.tag, manifest, OCI_MANIFEST, signal);
  await recordPushed(
    store,
    destination.host,
    destination.name,
    blobs.map((blob) => blob.digest),
  );
  return {
    reference: formatOciReference({ host: destination.host, name: destination.name, digest }),
    digest,
    uploaded: done.filter((d) => d === 'sent').length,
    uploadedBytes: blobs.reduce((sum, blob, i) => sum + (done[i] === 'sent' ? blob.size : 0), 0),
    mounted: done.filter((d) => d === 'mounted').length,
    skipped: done.filter((d) => d === 'present').length,
  };
}

/** The template's timestamp: the repository's, else the metadata's, else when it was fetched. */
function timestampOf(
  key: VersionKey,
  entry: StoredEntry,
  metadata: Record<string, unknown>,
  repositories?: RepositorySet,
): number {
  const version = repositories?.version(key);
  if (version) return version.timestamp;
  return Number(metadata.timestamp) > 0
    ? Number(metadata.timestamp)
    : Math.floor(Date.parse(entry.record?.fetchedAt ?? '') / 1000) || 0;
}

/**
 * Pushes a stored template to `target` (`oci://HOST[:PORT]/NAME[:TAG]`) as our artifact, or with `containerDisk` as a
 * KubeVirt containerDisk image; blobs the registry has are not sent again.
 */
export async function pushTemplate(ref: string, target: string, options: PushOptions): Promise<PushResult> {
  const ctx = options.context ?? createContext();
  const destination = parseOciReference(target);
  if (destination.digest)
    throw new TemplatesError('USAGE', 'push to a tag, not a digest: the digest is what the push prints', {
      hint: 'oci://HOST/NAME:TAG',
    });
  const key = storedKey(ref, options.repositories);
  const entry = await readSettledEntry(options.store, key);
  const name = entryName(key);
  if (!entry)
    throw new TemplatesError('NOT_STORED', `${name} is not in the store ${options.store.root}`, {
      ref: name,
      hint: `templates fetch ${name} first`,
    });
  const registry = createRegistry({
    http: ctx.http,
    host: destination.host,
    ...(options.insecure ? { insecure: true } : {}),
    login: () => registryLogin(destination.host, ctx.env, ctx.home, options.credsFile ?? ctx.credsFile),
  });
  const to = { host: destination.host, name: destination.name, tag: destination.tag! };
  const metadata =
    typeof entry.metadata === 'object' && entry.metadata !== null && !Array.isArray(entry.metadata)
      ? (entry.metadata as Record<string, unknown>)
      : {};
  const timestamp = timestampOf(key, entry, metadata, options.repositories);
  if (options.containerDisk) {
    const image = await containerDiskImage(ctx, options.store, key, timestamp, options.signal);
    try {
      const pushed = await pushBlobs(
        options.store,
        registry,
        to,
        [bufferBlob(image.config), fileBlob(image.layer.path, image.layer.digest, image.layer.size)],
        image.manifest,
        { ...options, ref: name },
      );
      return { ref: name, layer: { digest: image.layer.digest, size: image.layer.size }, ...pushed };
    } finally {
      await rm(image.layer.path, { force: true });
    }
  }
  const layer = await layerFile(ctx, options.store, key, entry, name, options);
  try {
    const config: TemplateConfig = {
      schema: 1,
      ref: name,
      format: 'raw',
      size: entry.size,
      arch: typeof metadata.arch === 'string' ? metadata.arch : null,
      timestamp,
      digests: {
        ...(layer.raw.sha256 ? { sha256: layer.raw.sha256 } : {}),
        ...(layer.raw.sha1 ? { sha1: layer.raw.sha1 } : {}),
      },
      metadata,
    };
    const configBytes = configBlob(config);
    const manifest = templateManifest(
      { bytes: configBytes },
      {
        digest: layer.digest,
        size: layer.size,
        title: `${key.template}-${key.version}.raw.${layer.compression}`,
        compression: layer.compression,
      },
      config,
    );
    const pushed = await pushBlobs(
      options.store,
      registry,
      to,
      [bufferBlob(configBytes), fileBlob(layer.path, layer.digest, layer.size)],
      manifest,
      { ...options, ref: name },
    );
    return { ref: name, layer: { digest: layer.digest, size: layer.size }, ...pushed };
  } finally {
    if (layer.temporary) await rm(layer.path, { force: true });
  }
}

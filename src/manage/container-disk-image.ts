// A KubeVirt containerDisk of a stored template: one gzip tar layer holding /disk/disk.img (its qcow2, uid 107), config, manifest.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Context } from '../context.js';
import { storeIoError } from '../errors.js';
import { sha256Of } from '../oci/artifact.js';
import { PLATFORM_ARCH } from '../oci/container-disk.js';
import { tap } from '../util/tap.js';
import { ANNOTATION, OCI_MANIFEST } from '../oci/media-types.js';
import { entryName, tempDir, type VersionKey } from '../store/layout.js';
import type { Store } from '../store/store.js';
import { ensureQcow2 } from './qcow2.js';

/** KubeVirt's qemu user: the disk must be readable by it. */
const QEMU_UID = 107;

const OCI_IMAGE_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

/**
 * Builds the image in the store's temp dir (the caller removes `layer.path`). The tar and gzip bytes depend only on the
 * qcow2 and the template's timestamp, so pushing it again finds every blob in place.
 */
export async function containerDiskImage(
  ctx: Context,
  store: Store,
  key: VersionKey,
  timestamp: number,
  signal?: AbortSignal,
) {
  const { pack } = await import('tar-stream');
  const qcow2 = await ensureQcow2(store, key, ctx, signal);
  await mkdir(tempDir(store.root), { recursive: true });
  const path = join(tempDir(store.root), `containerdisk-${process.pid}-${randomBytes(4).toString('hex')}.tar.gz`);
  const mtime = new Date(Math.floor(timestamp) * 1000);
  const tar = pack();
  const diffId = createHash('sha256');
  const digest = createHash('sha256');
  let size = 0;
  const written = pipeline(
    tar,
    tap((chunk) => diffId.update(chunk)),
    createGzip({ level: 6 }),
    tap((chunk) => {
      digest.update(chunk);
      size += chunk.length;
    }),
    createWriteStream(path),
    ...((signal ? [{ signal }] : []) as []),
  );
  tar.entry({ name: 'disk/', type: 'directory', mode: 0o555, uid: QEMU_UID, gid: QEMU_UID, mtime });
  const entry = tar.entry({
    name: 'disk/disk.img',
    type: 'file',
    size: qcow2.size,
    mode: 0o440,
    uid: QEMU_UID,
    gid: QEMU_UID,
    mtime,
  });
  await pipeline(createReadStream(qcow2.path, { highWaterMark: 1024 * 1024 }), entry);
  tar.finalize();
  await written.catch((error: unknown) => {
    throw storeIoError(error, path, 'cannot write');
  });
  const layer = { path, digest: `sha256:${digest.digest('hex')}`, size };
  const config = Buffer.from(
    JSON.stringify({
      architecture: PLATFORM_ARCH,
      os: 'linux',
      created: mtime.toISOString(),
      config: { Labels: { [ANNOTATION.title]: entryName(key) } },
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffId.digest('hex')}`] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_IMAGE_CONFIG, digest: sha256Of(config), size: config.length },
      layers: [{ mediaType: OCI_LAYER_GZIP, digest: layer.digest, size: layer.size }],
      annotations: { [ANNOTATION.title]: entryName(key), [ANNOTATION.created]: mtime.toISOString() },
    }),
  );
  return { config, manifest, layer };
}

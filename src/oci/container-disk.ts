// KubeVirt containerDisks: the one file below /disk/ of a container image, extracted while its layer streams and is verified.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { TemplatesError, abortError, isTemplatesError, redactUrl } from '../errors.js';
import { tap } from '../util/tap.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from './media-types.js';
import type { Manifest, Registry } from './registry.js';

interface Layer {
  mediaType: string;
  digest: string;
  size: number;
}

export interface ExtractedDisk {
  /** The disk's path in the image (`disk/disk.img`) and where it was written. */
  name: string;
  path: string;
  size: number;
  /** sha256 of the extracted file, `sha256:<hex>`. */
  digest: string;
  /** The layer it came from (verified). */
  layer: string;
}

/** This machine's architecture as image platforms name it (Go's names). */
export const PLATFORM_ARCH =
  ({ x64: 'amd64', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ??
  process.arch;

/** The image manifest to read: the manifest itself, or from an index the one for linux and this machine's architecture. */
export async function imageManifest(
  registry: Registry,
  name: string,
  manifest: Manifest,
  signal?: AbortSignal,
): Promise<Manifest> {
  if (manifest.mediaType !== OCI_INDEX && manifest.mediaType !== DOCKER_MANIFEST_LIST) return manifest;
  const entries =
    (manifest.json.manifests as
      | Array<{ digest?: string; platform?: { os?: string; architecture?: string } }>
      | undefined) ?? [];
  const arch = PLATFORM_ARCH;
  const chosen =
    entries.find((m) => m.platform?.os === 'linux' && m.platform.architecture === arch) ??
    entries.find((m) => !m.platform);
  if (!chosen?.digest)
    throw new TemplatesError(
      'FORMAT_UNSUPPORTED',
      `oci://${registry.host}/${name}: the index has no image for linux/${arch}`,
      { hint: 'push an image for this architecture' },
    );
  return registry.manifest(name, chosen.digest, signal);
}

/** True for an image manifest whose layers are tars: a container image, possibly a containerDisk. */
export function isContainerImage(manifest: Manifest): boolean {
  return (
    manifest.mediaType === OCI_MANIFEST ||
    manifest.mediaType === DOCKER_MANIFEST ||
    manifest.mediaType === OCI_INDEX ||
    manifest.mediaType === DOCKER_MANIFEST_LIST
  );
}

/** A decompressor for a layer's media type; FORMAT_UNSUPPORTED for zstd where Node has none, and for anything not a tar. */
function decompressor(layer: Layer, where: string): Transform | undefined {
  const type = layer.mediaType;
  if (/tar$/.test(type) || type === 'application/vnd.docker.image.rootfs.diff.tar') return undefined;
  if (/tar\+gzip$/.test(type) || /diff\.tar\.gzip$/.test(type)) return zlib.createGunzip();
  if (/tar\+zstd$/.test(type)) {
    const zstd = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
    if (zstd) return zstd();
    throw new TemplatesError(
      'FORMAT_UNSUPPORTED',
      `${where}: a zstd layer, and this Node.js (${process.version}) has no zstd decoder`,
      { hint: 'push the containerDisk with gzip layers, or run templates on Node.js 22.15 or later' },
    );
  }
  throw new TemplatesError('FORMAT_UNSUPPORTED', `${where}: layer ${layer.digest} is ${type}, not a tar layer`, {
    hint: 'a containerDisk is an image whose layer holds /disk/<one file>',
  });
}

const clean = (name: string) => name.replace(/^(\.\/)+/, '').replace(/^\/+/, '');

/**
 * Reads the image's layers from the top down and writes the first `/disk/<file>` not hidden by a whiteout above it
 * to `output`. Each layer read is verified against its digest as it streams (HASH_MISMATCH otherwise); lower layers
 * are not read once the disk is found.
 */
export async function extractDisk(
  registry: Registry,
  name: string,
  image: Manifest,
  output: string,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<ExtractedDisk> {
  const { extract } = await import('tar-stream');
  const layers = ((image.json.layers as Layer[] | undefined) ?? []).slice().reverse();
  const hidden = new Set<string>();
  let allHidden = false;
  const where = `oci://${registry.host}/${name}@${image.digest}`;
  for (const layer of layers) {
    const decompress = decompressor(layer, where);
    const { response, url } = await registry.openBlob(name, layer.digest, signal ? { signal } : {});
    const hash = createHash('sha256');
    const tee = tap((chunk) => hash.update(chunk));
    const tar = extract();
    let found: ExtractedDisk | undefined;
    const whiteouts: string[] = [];
    tar.on('entry', (header, stream, next) => {
      const path = clean(header.name);
      const base = path.split('/').pop() ?? '';
      const inDisk = path.startsWith('disk/') && path.split('/').length === 2;
      if (path === '.wh.disk') whiteouts.push('*');
      else if (path === 'disk/.wh..wh..opq') whiteouts.push('*');
      else if (inDisk && base.startsWith('.wh.')) whiteouts.push(`disk/${base.slice(4)}`);
      const wanted =
        inDisk &&
        !base.startsWith('.wh.') &&
        (header.type === 'file' || header.type === 'contiguous-file') &&
        !allHidden &&
        !hidden.has(path);
      if (!wanted) {
        stream.on('end', () => next()).resume();
        return;
      }
      if (found) {
        stream.resume();
        next(
          new TemplatesError(
            'FORMAT_UNSUPPORTED',
            `${where}: /disk/ holds more than one file (${found.name}, ${path})`,
            { hint: 'a containerDisk holds exactly one disk file' },
          ),
        );
        return;
      }
      if ((header.size ?? 0) > maxBytes) {
        stream.resume();
        next(
          new TemplatesError(
            'IMAGE_TOO_LARGE',
            `${where}: ${path} is ${header.size} bytes, more than the limit of ${maxBytes}`,
            { hint: 'raise TEMPLATES_MAX_IMAGE_BYTES if the image is genuine' },
          ),
        );
        return;
      }
      const fileHash = createHash('sha256');
      let size = 0;
      const counter = tap((chunk) => {
        fileHash.update(chunk);
        size += chunk.length;
      });
      pipeline(stream, counter, createWriteStream(output)).then(
        () => {
          found = { name: path, path: output, size, digest: `sha256:${fileHash.digest('hex')}`, layer: layer.digest };
          next();
        },
        (error: unknown) => next(error as Error),
      );
    });
    try {
      await pipeline(
        response.body as Readable,
        tee,
        ...(decompress ? [decompress] : []),
        tar,
        ...((signal ? [{ signal }] : []) as []),
      );
    } catch (error) {
      if (signal?.aborted) throw abortError(signal);
      if (isTemplatesError(error)) throw error;
      const actual = `sha256:${hash.copy().digest('hex')}`;
      throw new TemplatesError(
        actual !== layer.digest ? 'HASH_MISMATCH' : 'FORMAT_UNSUPPORTED',
        `${redactUrl(url)}: layer ${layer.digest} could not be read as a tar: ${(error as Error).message}`,
        { url: redactUrl(url), hint: 'the layer is damaged or not a tar' },
        { cause: error },
      );
    }
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== layer.digest) {
      throw new TemplatesError('HASH_MISMATCH', `${redactUrl(url)}: layer digest is ${actual}, not ${layer.digest}`, {
        url: redactUrl(url),
        expected: layer.digest,
        actual,
        hint: 'the registry serves a blob that is not the one named; nothing was stored',
      });
    }
    if (found) return found;
    for (const path of whiteouts) {
      if (path === '*') allHidden = true;
      else hidden.add(path);
    }
    if (allHidden) break;
  }
  throw new TemplatesError('IMAGE_NOT_FOUND', `${where}: no /disk/<file> in the image (not a containerDisk)`, {
    hint: 'a KubeVirt containerDisk holds its disk as /disk/<one file>',
  });
}

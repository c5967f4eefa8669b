// Our template artifact (pure): the config blob and image manifest push writes, and reading them back on pull.
import { createHash } from 'node:crypto';
import { TemplatesError } from '../errors.js';
import {
  ANNOTATION,
  DOCKER_MANIFEST,
  OCI_EMPTY,
  OCI_MANIFEST,
  TEMPLATE_ARTIFACT,
  TEMPLATE_CONFIG,
  TEMPLATE_LAYER_XZ,
  TEMPLATE_LAYER_ZST,
} from './media-types.js';
import type { Manifest } from './registry.js';

/** The config blob: what a fetch needs besides the layer (format, sizes, digests) and the source's metadata. */
export interface TemplateConfig {
  schema: 1;
  /** The stored entry it was pushed from, `<repo>:<template>:<version>`. */
  ref: string;
  format: 'raw';
  /** Size of the raw image. */
  size: number;
  arch: string | null;
  /** Seconds since the epoch: the template's timestamp. */
  timestamp: number;
  /** Digests of the raw image, `algo:hex`: those the store knew (at least one; sha1 alone for an entry lago's way verified). */
  digests: { sha256?: string; sha1?: string };
  metadata: Record<string, unknown>;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export type LayerCompression = 'xz' | 'zst';

/** The layer's media type for each compression, and back. */
const LAYER_TYPES: Record<LayerCompression, string> = { xz: TEMPLATE_LAYER_XZ, zst: TEMPLATE_LAYER_ZST };
const compressionOf = (mediaType: unknown) =>
  Object.entries(LAYER_TYPES).find(([, type]) => type === mediaType)?.[0] as LayerCompression | undefined;

export const sha256Of = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Serialised as written: the same template gives the same bytes, so a second push finds every blob and the manifest. */
export function configBlob(config: TemplateConfig): Buffer {
  return Buffer.from(JSON.stringify(config));
}

export function templateManifest(
  config: { bytes: Buffer },
  layer: { digest: string; size: number; title: string; compression: LayerCompression },
  info: TemplateConfig,
): Buffer {
  const created = new Date(info.timestamp * 1000).toISOString();
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: TEMPLATE_ARTIFACT,
    config: { mediaType: TEMPLATE_CONFIG, digest: sha256Of(config.bytes), size: config.bytes.length },
    layers: [
      {
        mediaType: LAYER_TYPES[layer.compression],
        digest: layer.digest,
        size: layer.size,
        annotations: { [ANNOTATION.title]: layer.title },
      },
    ],
    annotations: {
      [ANNOTATION.title]: info.ref,
      [ANNOTATION.created]: created,
      [ANNOTATION.version]: info.ref.split(':').pop()!,
      [ANNOTATION.rawSize]: String(info.size),
      ...(info.digests.sha256 ? { [ANNOTATION.rawDigest]: info.digests.sha256 } : {}),
      ...(info.digests.sha1 ? { [ANNOTATION.rawSha1]: info.digests.sha1 } : {}),
    },
  };
  return Buffer.from(JSON.stringify(manifest));
}

/** What a pull of a template artifact needs from its manifest. */
export interface TemplateArtifact {
  manifestDigest: string;
  config: Descriptor;
  layer: Descriptor;
  /** How the layer is compressed: `.xz`, or `.zst` (push --layer zst). */
  compression: LayerCompression;
  annotations: Record<string, string>;
}

function descriptor(value: unknown, where: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (
    typeof d !== 'object' ||
    d === null ||
    typeof d.mediaType !== 'string' ||
    typeof d.digest !== 'string' ||
    !/^sha256:[a-f0-9]{64}$/.test(d.digest) ||
    !Number.isSafeInteger(d.size) ||
    d.size! < 0
  ) {
    throw new TemplatesError('FORMAT_UNSUPPORTED', `${where}: not a valid OCI descriptor (sha256 digests only)`, {
      hint: 'the manifest is damaged or of an unsupported kind',
    });
  }
  return d as Descriptor;
}

/** True when the manifest is one of ours (artifactType, config type, or one xz or zst layer with the empty config). */
export function isTemplateManifest(manifest: Manifest): boolean {
  const json = manifest.json as {
    artifactType?: unknown;
    config?: { mediaType?: unknown };
    layers?: Array<{ mediaType?: unknown }>;
  };
  return (
    json.artifactType === TEMPLATE_ARTIFACT ||
    json.config?.mediaType === TEMPLATE_CONFIG ||
    (json.config?.mediaType === OCI_EMPTY &&
      json.layers?.length === 1 &&
      compressionOf(json.layers[0]?.mediaType) !== undefined)
  );
}

/** The config and layer of one of our manifests. */
export function readTemplateManifest(manifest: Manifest, where: string): TemplateArtifact {
  const json = manifest.json as { mediaType?: unknown; config?: unknown; layers?: unknown; annotations?: unknown };
  if (manifest.mediaType !== OCI_MANIFEST && manifest.mediaType !== DOCKER_MANIFEST) {
    throw new TemplatesError(
      'FORMAT_UNSUPPORTED',
      `${where}: a ${manifest.mediaType || 'manifest without a media type'}, not an image manifest`,
      { hint: 'name one image manifest (a tag or its digest), not an index' },
    );
  }
  const layers = Array.isArray(json.layers)
    ? json.layers.map((layer, i) => descriptor(layer, `${where}: layers[${i}]`))
    : [];
  const layer = layers[0];
  const compression = compressionOf(layer?.mediaType);
  if (!layer || !compression || layers.length !== 1) {
    throw new TemplatesError(
      'FORMAT_UNSUPPORTED',
      `${where}: a template artifact has exactly one ${TEMPLATE_LAYER_XZ} or ${TEMPLATE_LAYER_ZST} layer`,
      { hint: 'push it with templates push' },
    );
  }
  const annotations =
    typeof json.annotations === 'object' && json.annotations !== null
      ? (json.annotations as Record<string, string>)
      : {};
  return {
    manifestDigest: manifest.digest,
    config: descriptor(json.config, `${where}: config`),
    layer,
    compression,
    annotations,
  };
}

/** The config blob's content: ours, or (the empty config) what the annotations say. */
export function readTemplateConfig(bytes: Buffer, artifact: TemplateArtifact, where: string): TemplateConfig {
  if (artifact.config.mediaType === OCI_EMPTY) {
    const a = artifact.annotations;
    const size = Number(a[ANNOTATION.rawSize]);
    return {
      schema: 1,
      ref: a[ANNOTATION.title] ?? '',
      format: 'raw',
      size: Number.isSafeInteger(size) ? size : 0,
      arch: null,
      timestamp: Date.parse(a[ANNOTATION.created] ?? '') / 1000 || 0,
      digests: {
        ...(a[ANNOTATION.rawDigest] ? { sha256: a[ANNOTATION.rawDigest] } : {}),
        ...(a[ANNOTATION.rawSha1] ? { sha1: a[ANNOTATION.rawSha1] } : {}),
      },
      metadata: {},
    };
  }
  let data: Partial<TemplateConfig>;
  try {
    data = JSON.parse(bytes.toString('utf8')) as Partial<TemplateConfig>;
  } catch {
    data = {};
  }
  const digests = data.digests as Record<string, unknown> | undefined;
  const digest = (name: string) => digests?.[name] === undefined || typeof digests[name] === 'string';
  if (
    data.schema !== 1 ||
    typeof data.size !== 'number' ||
    typeof digests !== 'object' ||
    digests === null ||
    !digest('sha256') ||
    !digest('sha1') ||
    !(digests.sha256 || digests.sha1)
  ) {
    throw new TemplatesError('METADATA_INVALID', `${where}: the config blob is not a templates config`, {
      hint: 'push it with templates push',
    });
  }
  return {
    ...data,
    metadata: typeof data.metadata === 'object' && data.metadata !== null ? data.metadata : {},
  } as TemplateConfig;
}

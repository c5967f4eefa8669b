// The `oci` provider: handles are tags (or digests) of one registry repository holding our artifacts; the layer is the `.xz` (or `.zst`).
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { TemplatesError, redactUrl } from '../errors.js';
import type { HttpClient } from '../http/client.js';
import {
  isTemplateManifest,
  readTemplateConfig,
  readTemplateManifest,
  sha256Of,
  type TemplateArtifact,
  type TemplateConfig,
} from '../oci/artifact.js';
import { registryLogin } from '../oci/credentials.js';
import { createRegistry, MAX_MANIFEST_BYTES, type Manifest, type Registry } from '../oci/registry.js';
import { extractDisk, imageManifest, isContainerImage, type ExtractedDisk } from '../oci/container-disk.js';
import { readLimited } from '../util/read-limited.js';
import { toolMissing } from '../util/tools.js';
import type { OpenOptions, OpenedFile, Provider } from './types.js';

export interface OciSource {
  /** `https://HOST[:PORT]` (http only for loopback, or when the source says so). */
  registry: string;
  /** The repository below the registry. */
  repository: string;
}

export interface OciProviderOptions {
  env: Record<string, string | undefined>;
  home: string;
  credsFile?: string;
}

/** One resolved artifact: its manifest's config and layer, and the config's content. */
export interface ResolvedArtifact {
  artifact: TemplateArtifact;
  config: TemplateConfig;
}

/** What a reference names: one of our artifacts (with its config), or a container image (maybe a containerDisk). */
type Inspected = ({ kind: 'template' } & ResolvedArtifact) | { kind: 'container'; manifest: Manifest };

async function inspectReference(
  registry: Registry,
  repository: string,
  reference: string,
  signal?: AbortSignal,
): Promise<Inspected> {
  const manifest = await registry.manifest(repository, reference, signal);
  if (!isTemplateManifest(manifest) && isContainerImage(manifest))
    return { kind: 'container', manifest: await imageManifest(registry, repository, manifest, signal) };
  return { kind: 'template', ...(await artifactOf(registry, repository, reference, manifest, signal)) };
}

/** The manifest at `reference` and its config blob (verified against its digest); FORMAT_UNSUPPORTED when it is not ours. */
export async function resolveArtifact(
  registry: Registry,
  repository: string,
  reference: string,
  signal?: AbortSignal,
): Promise<ResolvedArtifact> {
  return artifactOf(registry, repository, reference, await registry.manifest(repository, reference, signal), signal);
}

async function artifactOf(
  registry: Registry,
  repository: string,
  reference: string,
  manifest: Manifest,
  signal?: AbortSignal,
): Promise<ResolvedArtifact> {
  const where = `oci://${registry.host}/${repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
  if (!isTemplateManifest(manifest)) {
    throw new TemplatesError(
      'FORMAT_UNSUPPORTED',
      `${where}: not a template artifact (${manifest.mediaType || 'unknown media type'})`,
      { hint: 'push templates with templates push; container images are not templates' },
    );
  }
  const artifact = readTemplateManifest(manifest, where);
  const { response, url } = await registry.openBlob(repository, artifact.config.digest, signal ? { signal } : {});
  const bytes = await readLimited(response.body, MAX_MANIFEST_BYTES, signal);
  if (sha256Of(bytes) !== artifact.config.digest) {
    throw new TemplatesError(
      'HASH_MISMATCH',
      `${redactUrl(url)}: the config blob's digest is ${sha256Of(bytes)}, not ${artifact.config.digest}`,
      {
        url: redactUrl(url),
        expected: artifact.config.digest,
        actual: sha256Of(bytes),
        hint: 'the registry serves a blob that is not the one named; nothing was stored',
      },
    );
  }
  return { artifact, config: readTemplateConfig(bytes, artifact, where) };
}

export interface OciProvider extends Provider {
  resolve(handle: string, signal?: AbortSignal): Promise<ResolvedArtifact>;
  inspect(handle: string, signal?: AbortSignal): Promise<Inspected>;
  /** A provider of the disk inside a containerDisk image, extracted (once, on first open) to `output`. */
  containerDisk(image: Manifest, output: string, maxBytes: number): Provider;
}

export function createOciProvider(source: OciSource, http: HttpClient, options: OciProviderOptions): OciProvider {
  const url = new URL(source.registry);
  const registry = createRegistry({
    http,
    host: url.host,
    insecure: url.protocol === 'http:',
    login: () => registryLogin(url.host, options.env, options.home, options.credsFile),
  });
  const inspected = new Map<string, Promise<Inspected>>();
  const inspect = (handle: string, signal?: AbortSignal) => {
    let found = inspected.get(handle);
    if (!found) {
      found = inspectReference(registry, source.repository, handle, signal);
      found.then(
        (value) => {
          if (value.kind === 'template')
            layerUrls.set(handle, {
              suffix: `.${value.artifact.compression}`,
              url: redactUrl(registry.blobUrl(source.repository, value.artifact.layer.digest)),
            });
        },
        () => inspected.delete(handle),
      );
      inspected.set(handle, found);
    }
    return found;
  };
  const resolve = async (handle: string, signal?: AbortSignal): Promise<ResolvedArtifact> => {
    const found = await inspect(handle, signal);
    if (found.kind === 'template') return found;
    throw new TemplatesError(
      'FORMAT_UNSUPPORTED',
      `${locate(handle, '')}: a container image, not a template artifact`,
      { hint: 'fetch it as oci://… (a containerDisk), or push templates with templates push' },
    );
  };
  // A resolved template's layer URL: what its `.xz` (or `.zst`) is located at, so a kept partial download is resumed from it.
  const layerUrls = new Map<string, { suffix: string; url: string }>();
  const locate = (handle: string, suffix: string) =>
    (layerUrls.get(handle)?.suffix === suffix && layerUrls.get(handle)?.url) ||
    `oci://${url.host}/${source.repository}${handle.startsWith('sha256:') ? '@' : ':'}${handle}${suffix ? ` (${suffix})` : ''}`;
  const text = (handle: string, body: string): OpenedFile => ({
    location: locate(handle, ''),
    size: Buffer.byteLength(body),
    offset: 0,
    body: Readable.from([Buffer.from(body)]),
  });
  return {
    locate,
    resolve,
    inspect,
    containerDisk(image, output, maxBytes) {
      let extracted: Promise<ExtractedDisk> | undefined;
      const extract = (signal?: AbortSignal) =>
        (extracted ??= extractDisk(registry, source.repository, image, output, maxBytes, signal));
      const at = (suffix: string) =>
        `oci://${url.host}/${source.repository}@${image.digest}${suffix ? ` (${suffix})` : ''}`;
      return {
        locate: (_handle, suffix) => at(suffix),
        async open(_handle, suffix, openOptions = {}) {
          // The disk is the plain image; its sha256 (of what the verified layer held) is its .hash; nothing else exists.
          if (suffix !== '' && suffix !== '.hash') return null;
          const disk = await extract(openOptions.signal);
          if (suffix === '.hash')
            return {
              location: at('.hash'),
              size: disk.digest.length,
              offset: 0,
              body: Readable.from([Buffer.from(disk.digest)]),
            };
          return {
            location: `${at('')}/${disk.name}`,
            size: disk.size,
            offset: 0,
            body: createReadStream(disk.path, { highWaterMark: 1024 * 1024 }),
          };
        },
      };
    },
    async open(handle: string, suffix: string, openOptions: OpenOptions = {}): Promise<OpenedFile | null> {
      const { signal } = openOptions;
      // The layer is the .xz (or the .zst); there is no plain image, and the sidecars come from the config blob.
      if (suffix === '' || suffix === '.hash' || suffix === '.metadata') return null;
      const { artifact, config } = await resolve(handle, signal);
      if (suffix === '.xz.hash') {
        const raw = config.digests.sha256 ?? config.digests.sha1;
        return raw ? text(handle, raw) : null;
      }
      if (suffix === '.xz.metadata') return text(handle, JSON.stringify(config.metadata));
      const layerSuffix = `.${artifact.compression}`;
      // Asked for the .xz of a zst layer: the fetch skipped the .zst, which it does only without zstd.
      if (suffix === '.xz' && layerSuffix === '.zst')
        throw toolMissing(
          'zstd',
          `${locate(handle, '')}: the artifact's layer is zstd-compressed (pushed with --layer zst)`,
        );
      if (suffix !== layerSuffix) return null;
      const { layer } = artifact;
      // A blob is immutable: its digest is its validator. Never ask past its end (distribution's 416 is malformed).
      const from =
        openOptions.resume && openOptions.resume.validator === layer.digest && openOptions.resume.offset < layer.size
          ? openOptions.resume.offset
          : 0;
      const opened = await registry.openBlob(source.repository, layer.digest, {
        offset: from,
        ...(signal ? { signal } : {}),
      });
      return {
        location: redactUrl(opened.url),
        size: layer.size,
        offset: opened.offset,
        validator: layer.digest,
        body: opened.response.body,
      };
    },
  };
}

// The `oci` provider: handles are tags (or digests) of one registry repository holding our artifacts; the layer is the `.xz`.
import { Readable } from 'node:stream';
import { TemplatesError, redactUrl } from '../errors.js';
import type { HttpClient } from '../http/client.js';
import { isTemplateManifest, readTemplateConfig, readTemplateManifest, sha256Of, type TemplateArtifact, type TemplateConfig } from '../oci/artifact.js';
import { authFiles, findLogin } from '../oci/credentials.js';
import { createRegistry, MAX_MANIFEST_BYTES, type Registry } from '../oci/registry.js';
import { readLimited } from '../util/read-limited.js';
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

/** The manifest at `reference` and its config blob (verified against its digest). */
export async function resolveArtifact(registry: Registry, repository: string, reference: string, signal?: AbortSignal): Promise<ResolvedArtifact> {
  const where = `oci://${registry.host}/${repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
  const manifest = await registry.manifest(repository, reference, signal);
  if (!isTemplateManifest(manifest)) {
    throw new TemplatesError('FORMAT_UNSUPPORTED', `${where}: not a template artifact (${manifest.mediaType || 'unknown media type'})`, { hint: 'push templates with templates push; container images are not templates' });
  }
  const artifact = readTemplateManifest(manifest, where);
  const { response, url } = await registry.openBlob(repository, artifact.config.digest, signal ? { signal } : {});
  const bytes = await readLimited(response.body, MAX_MANIFEST_BYTES, signal);
  if (sha256Of(bytes) !== artifact.config.digest) {
    throw new TemplatesError('HASH_MISMATCH', `${redactUrl(url)}: the config blob's digest is ${sha256Of(bytes)}, not ${artifact.config.digest}`, { url: redactUrl(url), expected: artifact.config.digest, actual: sha256Of(bytes), hint: 'the registry serves a blob that is not the one named; nothing was stored' });
  }
  return { artifact, config: readTemplateConfig(bytes, artifact, where) };
}

export function createOciProvider(source: OciSource, http: HttpClient, options: OciProviderOptions): Provider & { resolve(handle: string, signal?: AbortSignal): Promise<ResolvedArtifact> } {
  const url = new URL(source.registry);
  const registry = createRegistry({
    http, host: url.host, insecure: url.protocol === 'http:',
    login: () => findLogin(url.host, authFiles(options.env, options.home, options.credsFile), options.credsFile ?? (options.env.TEMPLATES_CREDS_FILE || undefined)),
  });
  const resolved = new Map<string, Promise<ResolvedArtifact>>();
  const resolve = (handle: string, signal?: AbortSignal) => {
    let found = resolved.get(handle);
    if (!found) {
      found = resolveArtifact(registry, source.repository, handle, signal);
      found.catch(() => resolved.delete(handle));
      resolved.set(handle, found);
    }
    return found;
  };
  const locate = (handle: string, suffix: string) => `oci://${url.host}/${source.repository}${handle.startsWith('sha256:') ? '@' : ':'}${handle}${suffix ? ` (${suffix})` : ''}`;
  const text = (handle: string, body: string): OpenedFile => ({ location: locate(handle, ''), size: Buffer.byteLength(body), offset: 0, body: Readable.from([Buffer.from(body)]) });
  return {
    locate,
    resolve,
    async open(handle: string, suffix: string, openOptions: OpenOptions = {}): Promise<OpenedFile | null> {
      const { signal } = openOptions;
      // The layer is the .xz; there is no plain image, and the sidecars come from the config blob.
      if (suffix === '' || suffix === '.hash' || suffix === '.metadata') return null;
      const { artifact, config } = await resolve(handle, signal);
      if (suffix === '.xz.hash') return text(handle, config.digests.sha256);
      if (suffix === '.xz.metadata') return text(handle, JSON.stringify(config.metadata));
      if (suffix !== '.xz') return null;
      const { layer } = artifact;
      // A blob is immutable: its digest is its validator. Never ask past its end (distribution's 416 is malformed).
      const from = openOptions.resume && openOptions.resume.validator === layer.digest && openOptions.resume.offset < layer.size ? openOptions.resume.offset : 0;
      const opened = await registry.openBlob(source.repository, layer.digest, { offset: from, ...(signal ? { signal } : {}) });
      return { location: redactUrl(opened.url), size: layer.size, offset: opened.offset, validator: layer.digest, body: opened.response.body };
    },
  };
}

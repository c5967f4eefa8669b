// indexRegistry: a lago-format repository JSON of the template artifacts in an OCI registry (reference 004's static index), incrementally.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { createContext, type Context } from '../context.js';
import { TemplatesError, outputIoError } from '../errors.js';
import { registryLogin } from '../oci/credentials.js';
import { registryUrl } from '../oci/reference.js';
import { createRegistry } from '../oci/registry.js';
import { resolveArtifact, type ResolvedArtifact } from '../providers/oci.js';
import { isValidName } from '../repository/reference.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { writeIfChanged } from './candidate.js';
import { selectedByGlobs } from './glob.js';

export interface RegistryIndexOptions {
  /** `oci://HOST[:PORT][/PREFIX]`: only repositories below PREFIX. */
  registry: string;
  name: string;
  output: string;
  /** Globs over `NAME:TAG` (NAME below the prefix). */
  include?: string[];
  exclude?: string[];
  /** Only manifests with every one of these annotations (`K=V`). */
  annotations?: Record<string, string>;
  /** Only templates whose config says this arch. */
  arch?: string;
  insecure?: boolean;
  context?: Context;
  signal?: AbortSignal;
}

export interface RegistryIndexSummary {
  output: string;
  written: boolean;
  versions: number;
  /** Manifests read this run; manifests known from the state file by digest. */
  fetched: number;
  reused: number;
  skipped: Array<{ ref: string; reason: string }>;
}

/** What a manifest digest gave last time: the artifact (or why it is not one). */
type Seen = { artifact: ResolvedArtifact } | { not: string };
interface State {
  schema: 1;
  manifests: Record<string, Seen>;
}

const statePathOf = (output: string) => `${output}.state`;

function parseTarget(text: string): { host: string; prefix: string } {
  const match = /^oci:\/\/([^/]+)(?:\/(.*))?$/.exec(text);
  if (!match)
    throw new TemplatesError('USAGE', `--registry takes oci://HOST[:PORT][/PREFIX], not ${JSON.stringify(text)}`);
  return { host: match[1]!, prefix: (match[2] ?? '').replace(/^\/+|\/+$/g, '') };
}

/** Reads the catalog (following Link pages), each repository's tags and each new manifest, and writes the repository JSON. */
export async function indexRegistry(options: RegistryIndexOptions): Promise<RegistryIndexSummary> {
  const ctx = options.context ?? createContext();
  if (!isValidName(options.name))
    throw new TemplatesError('USAGE', `${JSON.stringify(options.name)} is not a valid repository name`);
  const { host, prefix } = parseTarget(options.registry);
  const { signal } = options;
  const output = resolve(options.output);
  const registry = createRegistry({
    http: ctx.http,
    host,
    ...(options.insecure ? { insecure: true } : {}),
    login: () => registryLogin(host, ctx.env, ctx.home, ctx.credsFile),
  });
  let previous: State = { schema: 1, manifests: {} };
  try {
    const data = JSON.parse(await readFile(statePathOf(output), 'utf8')) as State;
    if (data.schema === 1 && typeof data.manifests === 'object') previous = data;
  } catch {
    // no state yet: everything is read
  }
  const state: State = { schema: 1, manifests: {} };
  const summary: RegistryIndexSummary = { output, written: false, versions: 0, fetched: 0, reused: 0, skipped: [] };
  const sources: Record<string, unknown> = {};
  const templates: Record<string, { versions: Record<string, unknown> }> = {};
  const base = registryUrl(host, options.insecure);
  for (const repository of await registry.catalog(signal)) {
    if (prefix && !repository.startsWith(`${prefix}/`)) continue;
    const short = prefix ? repository.slice(prefix.length + 1) : repository;
    const template = short.replace(/\//g, '+');
    for (const tag of await registry.tags(repository, signal)) {
      const ref = `${short}:${tag}`;
      if (!selectedByGlobs(ref, options.include ?? [], options.exclude ?? [])) continue;
      const digest = await registry.manifestDigest(repository, tag, signal);
      let seen = digest ? previous.manifests[digest] : undefined;
      if (seen) summary.reused++;
      else {
        summary.fetched++;
        seen = await resolveArtifact(registry, repository, digest ?? tag, signal).then(
          (artifact) => ({ artifact }),
          (error: unknown) => {
            if (
              error instanceof TemplatesError &&
              (error.code === 'FORMAT_UNSUPPORTED' || error.code === 'METADATA_INVALID')
            )
              return { not: error.message };
            throw error;
          },
        );
      }
      const key = digest ?? (seen && 'artifact' in seen ? seen.artifact.artifact.manifestDigest : undefined);
      if (key) state.manifests[key] = seen;
      if ('not' in seen) {
        summary.skipped.push({ ref, reason: 'not a template artifact' });
        continue;
      }
      const { artifact, config } = seen.artifact;
      const wanted = Object.entries(options.annotations ?? {}).find(([k, v]) => artifact.annotations[k] !== v);
      if (wanted) {
        summary.skipped.push({ ref, reason: `annotation ${wanted[0]} is not ${JSON.stringify(wanted[1])}` });
        continue;
      }
      if (options.arch !== undefined && config.arch !== options.arch) {
        summary.skipped.push({
          ref,
          reason: `arch is ${JSON.stringify(config.arch)}, not ${JSON.stringify(options.arch)}`,
        });
        continue;
      }
      if (!isValidName(template) || !isValidName(tag)) {
        summary.skipped.push({ ref, reason: 'not a valid template or version name' });
        continue;
      }
      sources[repository] = { type: 'oci', args: { registry: base, repository } };
      templates[template] ??= { versions: {} };
      const hash = config.digests.sha1 ?? config.digests.sha256;
      templates[template].versions[tag] = {
        source: repository,
        handle: tag,
        timestamp: config.timestamp,
        ...(hash ? { hash } : {}),
        size: config.size,
        format: config.format,
        ...(artifact.compression === 'zst'
          ? { zst_hash: artifact.layer.digest, zst_size: artifact.layer.size }
          : { compressed_hash: artifact.layer.digest }),
      };
      summary.versions++;
    }
  }
  await mkdir(dirname(output), { recursive: true }).catch((error: unknown) => {
    throw outputIoError(error, dirname(output), 'cannot create');
  });
  const sorted = Object.fromEntries(Object.entries(templates).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  summary.written = await writeIfChanged(
    output,
    `${JSON.stringify({ name: options.name, sources, templates: sorted }, null, 2)}\n`,
  );
  await writeFileAtomic(statePathOf(output), `${JSON.stringify(state)}\n`);
  return summary;
}

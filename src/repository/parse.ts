// Parse a repository JSON text (pure): lago's format exactly, broken parts kept as errors, never fatal to the rest.
import { dirname, isAbsolute, resolve } from 'node:path';
import { TemplatesError } from '../errors.js';
import { parseDigest } from './digest.js';
import type { Entry, Repository, SourceSpec, TemplateSpec, VersionSpec } from './model.js';
import { isValidName } from './reference.js';
import { checkHandle } from './handle.js';
import { LazyMap } from './lazy-map.js';
import { parseMirrors } from './mirrors.js';

export interface ParseOptions {
  /** Environment used to expand `$VARS` in file roots. */
  env: Record<string, string | undefined>;
  /** Home directory used to expand `~` in file roots. */
  home: string;
  /** False for repositories loaded over HTTP: a remote JSON may not point at local files. */
  allowFileSources: boolean;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function pathOf(parts: string[]): string {
  return parts
    .map((p, i) => (/^[A-Za-z_][A-Za-z0-9_.+-]*$/.test(p) ? `${i ? '.' : ''}${p}` : `[${JSON.stringify(p)}]`))
    .join('');
}

function broken<T>(location: string, path: string[], what: string): Entry<T> {
  const jsonPath = pathOf(path);
  return {
    ok: false,
    error: new TemplatesError('ENTRY_BROKEN', `${location}: ${jsonPath}: ${what}`, {
      file: location,
      jsonPath,
      hint: 'this entry of the repository is broken; ask its owner to fix it or use another version',
    }),
  };
}

function invalid(location: string, path: string[], what: string): TemplatesError {
  const jsonPath = path.length ? pathOf(path) : '(root)';
  return new TemplatesError('REPO_INVALID', `${location}: ${jsonPath}: ${what}`, { file: location, jsonPath });
}

/** Expands `~` and `$VAR`/`${VAR}` the way lago (Python's expanduser/expandvars) did; unknown vars stay as written. */
export function expandPath(text: string, env: ParseOptions['env'], home: string): string {
  const withHome = text === '~' || text.startsWith('~/') ? home + text.slice(1) : text;
  return withHome.replace(/\$(\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (all, _b, braced, bare) => {
    const value = env[(braced ?? bare) as string];
    return value === undefined ? all : value;
  });
}

function parseSource(
  name: string,
  spec: unknown,
  location: string,
  options: ParseOptions,
  mirrors: string[] | undefined,
): Entry<SourceSpec> {
  const at = ['sources', name];
  if (!isObject(spec)) return broken(location, at, 'expected an object');
  const args = spec.args;
  if (!isObject(args)) return broken(location, [...at, 'args'], 'expected an object');
  if (spec.type === 'http') {
    const baseurl = args.baseurl;
    if (typeof baseurl !== 'string') return broken(location, [...at, 'args', 'baseurl'], 'expected a string');
    let url: URL;
    try {
      url = new URL(baseurl);
    } catch {
      return broken(location, [...at, 'args', 'baseurl'], `not a URL: ${JSON.stringify(baseurl)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return broken(
        location,
        [...at, 'args', 'baseurl'],
        `unsupported URL scheme "${url.protocol.slice(0, -1)}" (only http and https)`,
      );
    }
    return { ok: true, value: { name, type: 'http', baseurl, ...(mirrors ? { mirrors } : {}) } };
  }
  if (spec.type === 'file') {
    if (!options.allowFileSources)
      return broken(location, [...at, 'type'], 'a "file" source is only allowed in a local repository file');
    const root = args.root;
    if (typeof root !== 'string' || root.length === 0)
      return broken(location, [...at, 'args', 'root'], 'expected a non-empty string');
    const expanded = expandPath(root, options.env, options.home);
    const absolute = isAbsolute(expanded) ? expanded : resolve(dirname(location), expanded);
    return { ok: true, value: { name, type: 'file', root: absolute } };
  }
  if (spec.type === 'oci') {
    const { registry, repository } = args;
    if (typeof registry !== 'string' || !/^https?:\/\/[^/]+\/?$/.test(registry))
      return broken(location, [...at, 'args', 'registry'], 'expected "https://HOST[:PORT]"');
    if (
      typeof repository !== 'string' ||
      !/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(repository)
    ) {
      return broken(
        location,
        [...at, 'args', 'repository'],
        'expected a registry repository name (lowercase, digits, . _ - and /)',
      );
    }
    return { ok: true, value: { name, type: 'oci', registry: registry.replace(/\/$/, ''), repository } };
  }
  return broken(location, [...at, 'type'], `unknown source type ${JSON.stringify(spec.type)} (known: http, file, oci)`);
}

function parseVersion(
  at: string[],
  name: string,
  spec: unknown,
  sources: Map<string, Entry<SourceSpec>>,
  location: string,
): Entry<VersionSpec> {
  if (!isValidName(name)) return broken(location, at, `${JSON.stringify(name)} is not a valid version name`);
  if (!isObject(spec)) return broken(location, at, 'expected an object');
  const sourceName = spec.source;
  if (typeof sourceName !== 'string') return broken(location, [...at, 'source'], 'expected a string');
  const source = sources.get(sourceName);
  if (!source) return broken(location, [...at, 'source'], `unknown source ${JSON.stringify(sourceName)}`);
  if (!source.ok) return { ok: false, error: source.error };
  const handle = spec.handle;
  if (typeof handle !== 'string') return broken(location, [...at, 'handle'], 'expected a string');
  const handleProblem = checkHandle(handle);
  if (handleProblem) return broken(location, [...at, 'handle'], handleProblem);
  const timestamp = spec.timestamp;
  if (typeof timestamp !== 'number' || !Number.isFinite(timestamp))
    return broken(location, [...at, 'timestamp'], 'expected a number (seconds since the epoch)');
  const version: VersionSpec = { name, source: source.value, handle, timestamp };
  for (const [field, key] of [
    ['hash', 'hash'],
    ['compressed_hash', 'compressedHash'],
  ] as const) {
    if (spec[field] === undefined) continue;
    const digest = typeof spec[field] === 'string' ? parseDigest(spec[field]) : undefined;
    if (!digest) return broken(location, [...at, field], 'expected "sha1|sha256|sha512:<hex>"');
    version[key] = digest;
  }
  if (spec.zst_hash !== undefined) {
    const digest = typeof spec.zst_hash === 'string' ? parseDigest(spec.zst_hash) : undefined;
    if (!digest) return broken(location, [...at, 'zst_hash'], 'expected "sha1|sha256|sha512:<hex>"');
    version.zst = { digest };
  }
  if (spec.zst_size !== undefined) {
    if (typeof spec.zst_size !== 'number' || !Number.isSafeInteger(spec.zst_size) || spec.zst_size < 0)
      return broken(location, [...at, 'zst_size'], 'expected a byte count');
    if (!version.zst) return broken(location, [...at, 'zst_size'], 'given without zst_hash');
    version.zst.size = spec.zst_size;
  }
  if (spec.caibx_hash !== undefined) {
    const digest = typeof spec.caibx_hash === 'string' ? parseDigest(spec.caibx_hash) : undefined;
    if (!digest) return broken(location, [...at, 'caibx_hash'], 'expected "sha1|sha256|sha512:<hex>"');
    version.caibx = { digest };
  }
  if (spec.caibx_size !== undefined) {
    if (typeof spec.caibx_size !== 'number' || !Number.isSafeInteger(spec.caibx_size) || spec.caibx_size < 0)
      return broken(location, [...at, 'caibx_size'], 'expected a byte count');
    if (!version.caibx) return broken(location, [...at, 'caibx_size'], 'given without caibx_hash');
    version.caibx.size = spec.caibx_size;
  }
  if (spec.size !== undefined) {
    if (typeof spec.size !== 'number' || !Number.isSafeInteger(spec.size) || spec.size < 0)
      return broken(location, [...at, 'size'], 'expected a byte count');
    version.size = spec.size;
  }
  if (spec.format !== undefined) {
    if (typeof spec.format !== 'string' || !/^[a-z0-9]+$/.test(spec.format))
      return broken(location, [...at, 'format'], 'expected a format name such as "raw" or "qcow2"');
    version.format = spec.format;
  }
  return { ok: true, value: version };
}

function parseTemplate(
  name: string,
  spec: unknown,
  sources: Map<string, Entry<SourceSpec>>,
  location: string,
): Entry<TemplateSpec> {
  const at = ['templates', name];
  if (!isValidName(name)) return broken(location, at, `${JSON.stringify(name)} is not a valid template name`);
  if (!isObject(spec)) return broken(location, at, 'expected an object');
  if (!isObject(spec.versions)) return broken(location, [...at, 'versions'], 'expected an object');
  const versions = new Map<string, Entry<VersionSpec>>();
  for (const [versionName, versionSpec] of Object.entries(spec.versions)) {
    versions.set(
      versionName,
      parseVersion([...at, 'versions', versionName], versionName, versionSpec, sources, location),
    );
  }
  return { ok: true, value: { name, versions } };
}

/** Parses a repository; throws REPO_INVALID only when the whole file is unusable. */
export function parseRepository(text: string, location: string, options: ParseOptions): Repository {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new TemplatesError(
      'REPO_INVALID',
      `${location}: invalid JSON: ${(error as Error).message}`,
      {
        file: location,
        hint: 'check that the location points at a repository JSON file',
      },
      { cause: error },
    );
  }
  if (!isObject(data)) throw invalid(location, [], 'expected a JSON object');
  if (typeof data.name !== 'string') throw invalid(location, ['name'], 'expected a string');
  if (!isValidName(data.name))
    throw invalid(location, ['name'], `${JSON.stringify(data.name)} is not a valid repository name`);
  const rawSources = data.sources ?? {};
  const rawTemplates = data.templates ?? {};
  if (!isObject(rawSources)) throw invalid(location, ['sources'], 'expected an object');
  if (!isObject(rawTemplates)) throw invalid(location, ['templates'], 'expected an object');

  const mirrors = parseMirrors(data.mirrors, location);
  const sources = new Map(
    Object.entries(rawSources).map(([name, spec]) => [
      name,
      parseSource(name, spec, location, options, mirrors.bySource.get(name)),
    ]),
  );
  // Templates parse when first read: a hit reads one; `problems` (what list and validation warn about) reads them all.
  const templates = new LazyMap<string, Entry<TemplateSpec>>(Object.entries(rawTemplates), (name, spec) =>
    parseTemplate(name, spec, sources, location),
  );
  const early: string[] = [...mirrors.problems];
  for (const name of mirrors.bySource.keys()) {
    const source = sources.get(name);
    if (!source?.ok || source.value.type !== 'http')
      early.push(`${location}: mirrors[${JSON.stringify(name)}]: no http source of that name; ignored`);
  }
  for (const source of sources.values()) if (!source.ok) early.push(source.error.message);
  let problems: string[] | undefined;
  const allProblems = () => {
    if (problems) return problems;
    problems = [...early];
    for (const template of templates.values()) {
      if (!template.ok) problems.push(template.error.message);
      else
        for (const version of template.value.versions.values())
          if (!version.ok && !problems.includes(version.error.message)) problems.push(version.error.message);
    }
    return problems;
  };
  const revision =
    Number.isSafeInteger(data.revision) && (data.revision as number) >= 0 ? { revision: data.revision as number } : {};
  const published =
    typeof data.published === 'number' && Number.isFinite(data.published) ? { published: data.published } : {};
  const upstream = typeof data.upstream === 'string' && data.upstream ? { upstream: data.upstream } : {};
  return {
    name: data.name,
    location,
    templates,
    ...revision,
    ...published,
    ...upstream,
    get problems() {
      return allProblems();
    },
  };
}

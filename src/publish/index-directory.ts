// indexDirectory: turn a directory of raw/qcow2 images into a lago-format repository, incrementally (`templates index`).
import { readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createContext, findExecutable, type Context } from '../context.js';
import { TemplatesError, abortError, isTemplatesError, outputIoError, type ErrorCode } from '../errors.js';
import { isValidName } from '../repository/reference.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { selectedByGlobs } from './glob.js';
import { nameImage } from './naming.js';
import { packImage } from './pack.js';
import type { IndexProgressCallback, IndexedStatus } from './progress.js';
import { recognise, type Recognised } from './recognise.js';
import { repositoryJson, type IndexedVersion, type RepositorySource } from './repository-json.js';
import { scanDirectory } from './scan.js';
import { readState, sameStamp, serializeState, statePath, type FileStamp, type IndexedImage, type IndexState } from './state.js';
import { compressOptions, type CompressChoices } from './xz.js';
import { withDirectoryLock } from './dir-lock.js';

export interface IndexOptions extends CompressChoices {
  /** The repository's name. */
  name: string;
  /** Serve the images from this http(s) URL (an `http` source); default: a `file` source rooted at the directory. */
  baseUrl?: string;
  /** Where the repository JSON goes; default `<dir>/<name>.json`. */
  output?: string;
  /** Globs over each image's handle (its path below the directory, without `.xz`). */
  include?: string[];
  exclude?: string[];
  /** Only images whose metadata has every one of these keys. */
  requireMetadata?: string[];
  /** Only images whose metadata `arch` is this. */
  arch?: string;
  context?: Context;
  signal?: AbortSignal;
  onProgress?: IndexProgressCallback;
}

export interface IndexSummary {
  repository: string;
  /** Absolute path of the repository JSON. */
  output: string;
  /** False when the repository JSON already had exactly this content (it was not rewritten). */
  written: boolean;
  templates: number;
  versions: number;
  images: Array<{ ref: string; handle: string; status: IndexedStatus }>;
  /** Images in the previous index that are gone now. */
  removed: string[];
  /** Files that are not images, or that the filters left out. */
  skipped: Array<{ path: string; reason: string }>;
  /** Images that could not be indexed; the rest of the index is still written. */
  problems: Array<{ path: string; code: ErrorCode; message: string }>;
  /** Uncompressed bytes read and compressed bytes written by this run. */
  bytesIn: number;
  bytesOut: number;
  seconds: number;
}

/** Metadata keys index writes (everything else in `<handle>.metadata` is kept as it was). */
const DERIVED_KEYS = ['size', 'format', 'sha256', 'compressed_size', 'timestamp'] as const;

async function stampOf(path: string): Promise<FileStamp | undefined> {
  try {
    const info = await stat(path);
    return { size: info.size, mtimeMs: info.mtimeMs };
  } catch {
    return undefined;
  }
}

async function readText(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

/** Writes `text` atomically unless the file already holds exactly it. Returns whether it wrote. */
async function writeIfChanged(path: string, text: string): Promise<boolean> {
  if ((await readText(path)) === text) return false;
  await writeFileAtomic(path, text).catch((error: unknown) => {
    throw outputIoError(error, path, 'cannot write');
  });
  return true;
}

function checkOptions(dir: string, options: IndexOptions): RepositorySource {
  if (!isValidName(options.name)) {
    throw new TemplatesError('USAGE', `${JSON.stringify(options.name)} is not a valid repository name`, { hint: 'use [A-Za-z0-9._+-], not "." or ".."' });
  }
  if (options.blockBytes !== undefined && !(Number.isSafeInteger(options.blockBytes) && options.blockBytes >= 1024 * 1024)) {
    throw new TemplatesError('USAGE', `block size must be at least 1 MiB, not ${options.blockBytes}`);
  }
  if (options.level !== undefined && !(Number.isInteger(options.level) && options.level >= 0 && options.level <= 9)) {
    throw new TemplatesError('USAGE', `xz level must be 0 to 9, not ${options.level}`);
  }
  if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 0)) {
    throw new TemplatesError('USAGE', `threads must be a whole number (0: one per core), not ${options.threads}`);
  }
  if (options.baseUrl === undefined) return { type: 'file', root: dir };
  let url: URL | undefined;
  try {
    url = new URL(options.baseUrl);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new TemplatesError('USAGE', `--base-url must be an http(s) URL, not ${JSON.stringify(options.baseUrl)}`);
  }
  return { type: 'http', baseurl: options.baseUrl };
}

async function readMetadataObject(path: string): Promise<Record<string, unknown> | TemplatesError> {
  const text = await readText(path);
  if (text === undefined) return {};
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  return new TemplatesError('METADATA_INVALID', `${path}: not a JSON object`, { path, hint: 'fix or remove the metadata file' });
}

/** Why the metadata filters leave an image out, or undefined when it is selected. */
function filteredOut(metadata: Record<string, unknown>, options: IndexOptions): string | undefined {
  const missing = (options.requireMetadata ?? []).filter((key) => !(key in metadata));
  if (missing.length) return `metadata has no ${missing.map((key) => JSON.stringify(key)).join(', ')}`;
  if (options.arch !== undefined && metadata.arch !== options.arch) return `metadata arch is ${JSON.stringify(metadata.arch ?? null)}, not ${JSON.stringify(options.arch)}`;
  return undefined;
}

/** Timestamp from metadata, unless the metadata's value is the mtime this tool put there itself last time. */
function chooseTimestamp(metadata: Record<string, unknown>, previous: IndexedImage | undefined, mtimeMs: number): Pick<IndexedImage, 'timestamp' | 'timestampFrom'> {
  const given = metadata.timestamp;
  const ours = previous?.timestampFrom === 'mtime' && given === previous.timestamp;
  if (typeof given === 'number' && Number.isFinite(given) && !ours) return { timestamp: given, timestampFrom: 'metadata' };
  return { timestamp: Math.floor(mtimeMs / 1000), timestampFrom: 'mtime' };
}

interface Candidate {
  /** The directory being indexed. */
  root: string;
  rel: string;
  handle: string;
  abs: string;
  metadata: Record<string, unknown>;
}

/** Builds (or brings up to date) the repository of `dir`. See docs/publishing.md. */
export async function indexDirectory(dir: string, options: IndexOptions): Promise<IndexSummary> {
  const started = performance.now();
  const ctx = options.context ?? createContext();
  const root = resolve(dir);
  const source = checkOptions(root, options);
  const output = options.output ? resolve(options.output) : join(root, `${options.name}.json`);
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) throw new TemplatesError('INPUT_NOT_FOUND', `${root} is not a directory`, { path: root, hint: 'give the directory that holds the images' });
  const xz = await findExecutable('xz', ctx.env.PATH);
  if (!xz) throw new TemplatesError('TOOL_MISSING', 'templates index needs the xz command', { tool: 'xz', hint: 'install xz (Debian: apt-get install xz-utils)' });
  return withDirectoryLock(root, async (signal) => {
    const previous = await readState(root);
    const state: IndexState = { schema: 1, images: {} };
    const summary: IndexSummary = {
      repository: options.name, output, written: false, templates: 0, versions: 0,
      images: [], removed: [], skipped: [], problems: [], bytesIn: 0, bytesOut: 0, seconds: 0,
    };
    const problem = (path: string, error: TemplatesError) => summary.problems.push({ path, code: error.code, message: error.message });
    const scan = await scanDirectory(root, new Set([output])).catch((error: unknown) => {
      throw outputIoError(error, root, 'cannot read');
    });
    await Promise.all(scan.leftovers.map((path) => rm(path, { force: true })));

    const versions: IndexedVersion[] = [];
    const taken = new Map<string, string>();
    for (const rel of scan.files) {
      if (signal.aborted) throw abortError(signal);
      const abs = join(root, rel);
      const handle = rel.endsWith('.xz') ? rel.slice(0, -3) : rel;
      if (!selectedByGlobs(handle, options.include ?? [], options.exclude ?? [])) {
        summary.skipped.push({ path: rel, reason: 'left out by --include/--exclude' });
        continue;
      }
      const metadataFile = join(root, `${handle}.metadata`);
      const metadata = await readMetadataObject(metadataFile);
      if (metadata instanceof TemplatesError) {
        problem(rel, metadata);
        continue;
      }
      const left = filteredOut(metadata, options);
      if (left) {
        summary.skipped.push({ path: rel, reason: left });
        continue;
      }
      const candidate = { root, rel, handle, abs, metadata };
      const prior = previous.images[handle];
      const reused = await unchanged(candidate, prior);
      let recognised: Extract<Recognised, { kind: 'image' }> | undefined;
      if (!reused) {
        const found = await recognise(abs, xz, signal);
        if (found.kind === 'other') {
          summary.skipped.push({ path: rel, reason: found.reason });
          continue;
        }
        if (found.kind === 'problem') {
          problem(rel, found.error);
          continue;
        }
        recognised = found;
      }
      const naming = nameImage(handle, metadata);
      if ('problem' in naming) {
        problem(rel, new TemplatesError('ENTRY_BROKEN', `${rel}: ${naming.problem}`, { path: abs }));
        continue;
      }
      const ref = `${naming.name}:${naming.version}`;
      const first = taken.get(ref);
      if (first) {
        problem(rel, new TemplatesError('ENTRY_BROKEN', `${rel}: ${ref} is already ${first}; left out`, { path: abs, hint: 'give one of them another "name"/"version" in its .metadata' }));
        continue;
      }
      const result = reused ?? (await packCandidate(candidate, recognised!, prior, xz, options, signal, summary));
      if (!result) continue;
      taken.set(ref, rel);
      await writeSidecars(candidate, result.image);
      state.images[handle] = result.image;
      versions.push({ template: naming.name, version: naming.version, handle, timestamp: result.image.timestamp, sha1: result.image.sha1, compressedSha256: result.image.compressedSha256, size: result.image.size, format: result.image.format });
      summary.images.push({ ref: `${options.name}:${ref}`, handle, status: result.status });
      options.onProgress?.({ ref: `${options.name}:${ref}`, phase: 'indexed', status: result.status });
    }
    summary.removed = Object.keys(previous.images).filter((handle) => !(handle in state.images)).sort();
    summary.written = await writeIfChanged(output, repositoryJson(options.name, source, versions));
    await writeIfChanged(statePath(root), serializeState(state));
    summary.templates = new Set(versions.map((v) => v.template)).size;
    summary.versions = versions.length;
    summary.seconds = Math.round(performance.now() - started) / 1000;
    return summary;
  }, options.signal);
}

/** The recorded facts, when the image and its `.xz` are unchanged (size, mtime) and `.hash` still holds the recorded SHA-1. */
async function unchanged(candidate: Candidate, previous: IndexedImage | undefined): Promise<{ image: IndexedImage; status: IndexedStatus } | undefined> {
  const { root, rel, handle, abs, metadata } = candidate;
  if (!previous || previous.file.path !== rel) return undefined;
  const fileStamp = await stampOf(abs);
  if (!fileStamp || !sameStamp(previous.file, fileStamp) || !sameStamp(previous.output, await stampOf(join(root, `${handle}.xz`)))) return undefined;
  if ((await readText(join(root, `${handle}.hash`))) !== previous.sha1) return undefined;
  return { image: { ...previous, ...chooseTimestamp(metadata, previous, fileStamp.mtimeMs) }, status: 'unchanged' };
}

/** One pass over a recognised image: writes its multi-block `.xz` (or checks the one it is) and learns its digests. */
async function packCandidate(
  candidate: Candidate,
  recognised: Extract<Recognised, { kind: 'image' }>,
  previous: IndexedImage | undefined,
  xz: string,
  options: IndexOptions,
  signal: AbortSignal,
  summary: IndexSummary,
): Promise<{ image: IndexedImage; status: IndexedStatus } | undefined> {
  const { root, rel, handle, abs, metadata } = candidate;
  const outputPath = join(root, `${handle}.xz`);
  const before = await stampOf(abs);
  if (!before) return undefined;
  const compression = compressOptions(options);
  const { blockBytes } = compression;
  // An xz that decodes on several threads (or is a single block anyway) is served as it is.
  const fit = recognised.xz !== undefined && (recognised.xz.blocks > 1 ? recognised.xz.sizesInHeaders : recognised.size <= blockBytes);
  const compress = !(outputPath === abs && fit);
  try {
    const packed = await packImage({
      input: { path: abs, xz: recognised.xz !== undefined },
      output: outputPath,
      compress,
      xz,
      compression,
      signal,
      onBytes: (bytes) => options.onProgress?.({ ref: handle, phase: 'compress', bytes, total: recognised.size }),
    });
    summary.bytesIn += packed.size;
    if (compress) summary.bytesOut += packed.compressedSize;
    // Stamps are taken after the pass: an in-place re-compression kept the mtime but changed the size.
    const image: IndexedImage = {
      file: { path: rel, xz: recognised.xz !== undefined, ...(await stampOf(abs))! },
      output: (await stampOf(outputPath))!,
      size: packed.size,
      format: recognised.format,
      sha1: packed.sha1,
      sha256: packed.sha256,
      compressedSize: packed.compressedSize,
      compressedSha256: packed.compressedSha256,
      ...chooseTimestamp(metadata, previous, before.mtimeMs),
    };
    return { image, status: compress ? 'compressed' : 'verified' };
  } catch (error) {
    if (!isTemplatesError(error) || error.code === 'ABORTED' || error.code === 'OUTPUT_IO' || error.code === 'TOOL_MISSING') throw error;
    summary.problems.push({ path: rel, code: error.code, message: error.message });
    return undefined;
  }
}

/** `<handle>.hash` (SHA-1 hex, no newline, as lago reads it) and `<handle>.metadata` (kept keys plus ours). */
async function writeSidecars(candidate: Candidate, image: IndexedImage): Promise<void> {
  const base = join(candidate.root, candidate.handle);
  await writeIfChanged(`${base}.hash`, image.sha1);
  const metadata: Record<string, unknown> = { ...candidate.metadata };
  const derived = { size: image.size, format: image.format, sha256: image.sha256, compressed_size: image.compressedSize, timestamp: image.timestamp };
  for (const key of DERIVED_KEYS) metadata[key] = derived[key];
  await writeIfChanged(`${base}.metadata`, `${JSON.stringify(metadata, null, 2)}\n`);
}

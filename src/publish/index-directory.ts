// indexDirectory: turn a directory of raw/qcow2 images into a lago-format repository, incrementally (`templates index`).
import { readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DEFAULT_CHUNK_SIZES } from '../chunks/sizes.js';
import { createContext } from '../context.js';
import { TemplatesError, abortError, outputIoError } from '../errors.js';
import {
  filteredOut,
  packCandidate,
  readMetadataObject,
  unchanged,
  writeIfChanged,
  writeSidecars,
} from './candidate.js';
import { chunkCandidate } from './chunk-candidate.js';
import { pruneChunks } from './chunk-gc.js';
import { withDirectoryLock } from './dir-lock.js';
import { selectedByGlobs } from './glob.js';
import { checkFormats, checkOptions, type IndexOptions, type IndexSummary } from './index-options.js';
import { nameImage } from './naming.js';
import { recognise, type Recognised } from './recognise.js';
import { nextRepositoryJson, repositoryJson, type IndexedVersion } from './repository-json.js';
import { scanDirectory } from './scan.js';
import { readState, serializeState, statePath, type IndexState } from './state.js';
import { VIRT_BUILDER_INDEX, writeVirtBuilderIndex } from './virt-builder-index.js';
import { findEncoders } from './xz.js';

export type { IndexOptions, IndexSummary };

/** Builds (or brings up to date) the repository of `dir`. See docs/publishing.md. */
/** `{arch: …}` (or `{osinfo: …}`) from the metadata's `field`, else its `fallback` field, when one is a string. */
function metadataText(metadata: Record<string, unknown> | undefined, field: 'arch' | 'osinfo', fallback: string) {
  const value = metadata?.[field] ?? metadata?.[fallback];
  return typeof value === 'string' && value ? { [field]: value } : {};
}

export async function indexDirectory(dir: string, options: IndexOptions): Promise<IndexSummary> {
  const started = performance.now();
  const ctx = options.context ?? createContext();
  const root = resolve(dir);
  const source = checkOptions(root, options);
  const output = options.output ? resolve(options.output) : join(root, `${options.name}.json`);
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory())
    throw new TemplatesError('INPUT_NOT_FOUND', `${root} is not a directory`, {
      path: root,
      hint: 'give the directory that holds the images',
    });
  const wantZst = checkFormats(options);
  const chunkSizes = options.chunkSizes === false ? undefined : (options.chunkSizes ?? DEFAULT_CHUNK_SIZES);
  const { xz, zstd } = await findEncoders('index', ctx.env.PATH, wantZst);
  return withDirectoryLock(
    root,
    async (signal) => {
      const previous = await readState(root);
      const state: IndexState = { schema: 1, images: {} };
      const summary: IndexSummary = {
        repository: options.name,
        output,
        written: false,
        templates: 0,
        versions: 0,
        images: [],
        removed: [],
        skipped: [],
        problems: [],
        bytesIn: 0,
        bytesOut: 0,
        seconds: 0,
        revision: 0,
      };
      const problem = (path: string, error: TemplatesError) =>
        summary.problems.push({ path, code: error.code, message: error.message });
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
        const reused = await unchanged(candidate, prior, wantZst);
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
          problem(
            rel,
            new TemplatesError('ENTRY_BROKEN', `${rel}: ${ref} is already ${first}; left out`, {
              path: abs,
              hint: 'give one of them another "name"/"version" in its .metadata',
            }),
          );
          continue;
        }
        const result =
          reused ?? (await packCandidate(candidate, recognised!, prior, xz, zstd, options, signal, summary));
        if (!result) continue;
        // A .zst no longer wanted (--formats xz) is removed: the JSON will not list it.
        if (!wantZst) await rm(join(root, `${handle}.zst`), { force: true });
        const { caibx: _recorded, ...image } = result.image;
        const chunks = await chunkCandidate(
          candidate,
          image,
          reused ? prior?.caibx : undefined,
          xz,
          chunkSizes,
          signal,
        );
        if (chunks instanceof TemplatesError) {
          problem(rel, chunks);
          continue;
        }
        summary.bytesOut += chunks?.written ?? 0;
        taken.set(ref, rel);
        await writeSidecars(candidate, image);
        state.images[handle] = { ...image, ...(chunks ? { caibx: chunks.chunks } : {}) };
        versions.push({
          template: naming.name,
          version: naming.version,
          handle,
          timestamp: result.image.timestamp,
          sha1: result.image.sha1,
          compressedSha256: result.image.compressedSha256,
          ...(result.image.zst ? { zst: { sha256: result.image.zst.sha256, size: result.image.zst.size } } : {}),
          ...(chunks ? { caibx: { sha256: chunks.chunks.sha256, size: chunks.chunks.size } } : {}),
          size: result.image.size,
          format: result.image.format,
          ...metadataText(metadata, 'arch', 'architecture'),
          ...metadataText(metadata, 'osinfo', 'distro'),
        });
        summary.images.push({ ref: `${options.name}:${ref}`, handle, status: result.status });
        options.onProgress?.({ ref: `${options.name}:${ref}`, phase: 'indexed', status: result.status });
      }
      summary.removed = Object.keys(previous.images)
        .filter((handle) => !(handle in state.images))
        .sort();
      const previousJson = await readFile(output, 'utf8').catch(() => undefined);
      const json = nextRepositoryJson(
        previousJson,
        Math.floor(ctx.now() / 1000),
        (top) => repositoryJson(options.name, source, versions, top),
        options.mirrors ?? [],
      );
      summary.written = await writeIfChanged(output, json);
      // virt-builder's index of the same versions, before the state (it keeps each .xz's SHA-512 there).
      for (const ref of await writeVirtBuilderIndex(root, options.name, versions, state, signal))
        summary.skipped.push({ path: VIRT_BUILDER_INDEX, reason: `${ref} left out of virt-builder's index` });
      summary.revision = (JSON.parse(json) as { revision: number }).revision;
      await writeIfChanged(statePath(root), serializeState(state));
      // Under the lock, after every index is written: no index run adds chunks meanwhile.
      if (options.pruneChunks)
        summary.chunks = await pruneChunks(root, {
          graceMs: options.pruneChunks.graceMs,
          now: ctx.now(),
          ...(signal ? { signal } : {}),
        });
      summary.templates = new Set(versions.map((v) => v.template)).size;
      summary.versions = versions.length;
      summary.seconds = Math.round(performance.now() - started) / 1000;
      return summary;
    },
    options.signal,
  );
}

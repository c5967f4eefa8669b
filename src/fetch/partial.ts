// Resumable downloads: the bytes of an interrupted download, kept under the entry's lock with the URL and validator they belong to.
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { partialPath, partialStatePath, type VersionKey } from '../store/layout.js';

/** A partial download smaller than this is not worth a Range request (and holds no complete format header). */
const MIN_RESUME_BYTES = 64 * 1024;

interface PartialState {
  schema: 1;
  /** The URL the bytes came from (as shown in messages, without credentials). */
  url: string;
  /** The strong ETag or Last-Modified the server gave; sent back as If-Range. */
  validator: string;
}

export interface PartialDownload {
  url: string;
  validator: string;
  /** Bytes kept: the resume offset. */
  offset: number;
  path: string;
}

export interface PartialFiles {
  path: string;
  statePath: string;
}

export function partialFiles(root: string, key: VersionKey): PartialFiles {
  return { path: partialPath(root, key), statePath: partialStatePath(root, key) };
}

export async function dropPartial(files: PartialFiles): Promise<void> {
  await Promise.all([rm(files.statePath, { force: true }), rm(files.path, { force: true })]);
}

/**
 * The kept partial download, or undefined. One that is unreadable, too small, or whose last write is older
 * than `maxAgeMs` is removed. Call only under the entry's lock.
 */
export async function findPartial(
  files: PartialFiles,
  maxAgeMs: number,
  now: number,
): Promise<PartialDownload | undefined> {
  try {
    const state = JSON.parse(await readFile(files.statePath, 'utf8')) as Partial<PartialState>;
    const { size, mtimeMs } = await stat(files.path);
    if (
      state.schema === 1 &&
      typeof state.url === 'string' &&
      typeof state.validator === 'string' &&
      size >= MIN_RESUME_BYTES &&
      now - mtimeMs <= maxAgeMs
    ) {
      return { url: state.url, validator: state.validator, offset: size, path: files.path };
    }
  } catch {
    // absent or unreadable: nothing to resume
  }
  await dropPartial(files);
  return undefined;
}

/** Records what the partial file is about to hold, before its first byte is written. */
export async function startPartial(files: PartialFiles, url: string, validator: string): Promise<void> {
  await mkdir(dirname(files.statePath), { recursive: true });
  const state: PartialState = { schema: 1, url, validator };
  await writeFile(`${files.statePath}.new`, JSON.stringify(state));
  await rename(`${files.statePath}.new`, files.statePath);
}

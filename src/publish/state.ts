// What `templates index` recorded of each image last time (DIR/.templates-index.state): what makes re-runs incremental.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChunkSizes } from '../chunks/buzhash.js';

const STATE_FILE = '.templates-index.state';
export const LOCK_FILE = '.templates-index.lock';

/** Size and mtime: a file with both unchanged is taken as unchanged. */
export interface FileStamp {
  size: number;
  mtimeMs: number;
}

export interface IndexedImage {
  /** The file the image was read from (relative to DIR), plain or xz. */
  file: FileStamp & { path: string; xz: boolean };
  /** The `<handle>.xz` served to fetches. */
  output: FileStamp;
  size: number;
  format: string;
  sha1: string;
  sha256: string;
  compressedSize: number;
  compressedSha256: string;
  /** The `<handle>.zst` served to fetches that have zstd, when one was written. */
  zst?: { output: FileStamp; size: number; sha256: string };
  /** The `<handle>.caibx` written for it, with the chunk sizes it was cut at. */
  caibx?: { output: FileStamp; size: number; sha256: string; sizes: ChunkSizes };
  /** SHA-512 of the `.xz`, taken when virt-builder's index first lists it (virt-builder-index.ts). */
  xzSha512?: string;
  /** The template's timestamp, and whether it came from the metadata or from the file's mtime. */
  timestamp: number;
  timestampFrom: 'metadata' | 'mtime';
}

export interface IndexState {
  schema: 1;
  /** By handle. */
  images: Record<string, IndexedImage>;
}

export const statePath = (dir: string) => join(dir, STATE_FILE);

export function sameStamp(a: FileStamp | undefined, b: FileStamp | undefined): boolean {
  return a !== undefined && b !== undefined && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/** The recorded state; an absent or unreadable one is empty (everything is redone, nothing is lost). */
export async function readState(dir: string): Promise<IndexState> {
  try {
    const state = JSON.parse(await readFile(statePath(dir), 'utf8')) as IndexState;
    if (state.schema === 1 && typeof state.images === 'object' && state.images !== null) return state;
  } catch {
    // absent or damaged: start over
  }
  return { schema: 1, images: {} };
}

export function serializeState(state: IndexState): string {
  const images = Object.fromEntries(Object.entries(state.images).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return `${JSON.stringify({ schema: 1, images }, null, 2)}\n`;
}

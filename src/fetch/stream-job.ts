// What each executor of a stream plan is given: the source, the open output, the plan, and the hashing it chose.
import type { FileHandle } from 'node:fs/promises';
import type { Transform } from 'node:stream';
import type { Context } from '../context.js';
import type { TemplatesError } from '../errors.js';
import type { Digest, HashAlgorithm } from '../repository/digest.js';
import type { Compression } from './decode.js';
import type { SizeLimit } from './download-errors.js';
import type { FifoSink } from './fifo-sink.js';
import { FollowHasher } from './follow-hasher.js';
import type { Hasher } from './hasher.js';
import { InlineHasher } from './inline-hasher.js';
import { ParallelHasher } from './parallel-hasher.js';
import type { PartialDownload } from './partial.js';
import type { OpenedImage } from './source.js';
import type { HashingPlan, StreamPlan } from './stream-plan.js';

/** What a verified digest covers: the image, the `.xz` (lago's compressed_hash) or the `.zst`. */
export type Verified = 'image' | 'compressed' | 'zst';

export interface Check {
  of: Verified;
  digest: Digest;
}

/** What the stream reports as it goes. */
export interface StreamOptions {
  signal?: AbortSignal;
  /**
   * A cache host's way: the download writes the compressed file to its kept copy at the network's pace, and the
   * decoder follows that file at its own, with this niceness (others' work first). Only with a decoder process and a kept file.
   */
  decodeBehind?: { nice: number };
  /** With decodeBehind on the fast path: the whole compressed file arrived and matched its digest (decoding may still run). */
  onCompressedVerified?: () => void;
  /** Bytes read from the source so far, and the total when known. */
  onBytes?: (bytes: number, total: number | undefined, location: string) => void;
}

/** A decoder that runs as a child process (xz, zstd). */
export interface DecoderTool {
  compression: Compression;
  path: string;
}

export interface StreamJob {
  ctx: Context;
  image: OpenedImage;
  plan: StreamPlan;
  check: Check;
  limit: SizeLimit;
  options: StreamOptions;
  /** The file the image is written to, open for writing (resumed in place when uncompressed). */
  output: { path: string; handle: FileHandle };
  /** A kept prefix continued from. */
  replay?: PartialDownload;
  /** The file that keeps the compressed bytes as they arrive, open for appending. */
  kept?: { path: string; handle: FileHandle };
  /** The hashing the plan chose, and the Transform it puts in the stream when it hashes passing bytes. */
  hasher: Hasher;
  passing?: Transform;
  /** The size-limit error for `bytes` decoded or downloaded. */
  tooMany(bytes: number): TemplatesError;
  /** Opens a file that is closed with the job. */
  openFile(path: string, flags: string): Promise<FileHandle>;
}

/** What an executor found: the digest of what the check covers, and the source bytes that arrived (kept prefix included). */
export interface Executed {
  actual: Digest;
  arrived: number;
}

/** Starts the hashing the plan chose: over the passing bytes, behind a file's writer, or the FIFO's worker (started already). */
export function startHashing(
  kind: HashingPlan,
  algorithm: HashAlgorithm,
  files: { output: string; kept?: string },
  sink?: FifoSink,
): { hasher: Hasher; passing?: Transform } {
  if (kind === 'fifo') return { hasher: sink! };
  if (kind === 'inline' || kind === 'parallel') {
    const hasher = kind === 'inline' ? new InlineHasher(algorithm) : new ParallelHasher(algorithm);
    return { hasher, passing: hasher };
  }
  return { hasher: new FollowHasher(kind === 'follow-output' ? files.output : files.kept!, algorithm) };
}

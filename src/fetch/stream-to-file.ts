// Stream one source into a temp file in one pass: replay a kept prefix, tee for resume, decode xz/zstd, hash, write sparse.
import { open, type FileHandle } from 'node:fs/promises';
import { setPriority as osSetPriority } from 'node:os';
import { Writable, type Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from '../context.js';
import { storeIoError, type TemplatesError } from '../errors.js';
import { sameDigest, type Digest } from '../repository/digest.js';
import { peek } from '../util/peek.js';
import { readHead } from '../util/read-head.js';
import { Counter } from './counter.js';
import { pumpFile } from './file-pump.js';
import {
  checkDecoder,
  checkZstd,
  lzmaNativeDecoder,
  spawnDecoder,
  type Compression,
  type DecoderProcess,
} from './decode.js';
import { compressionOf } from './detect.js';
import { classify, settle, sizeError, type SizeLimit } from './download-errors.js';
import { FollowHasher } from './follow-hasher.js';
import { InlineHasher } from './inline-hasher.js';
import { TooLargeError, startFifoSink, type FifoSink } from './fifo-sink.js';
import { ParallelHasher } from './parallel-hasher.js';
import { planStream, type HashingPlan } from './stream-plan.js';
import type { PartialDownload, PartialFiles } from './partial.js';
import type { OpenedImage } from './source.js';
import { createSparseWriter } from './sparse-writer.js';
import { startWriteback } from './writeback.js';
import { sourceBytes } from './source-bytes.js';

/** What a verified digest covers: the image, the `.xz` (lago's compressed_hash) or the `.zst`. */
export type Verified = 'image' | 'compressed' | 'zst';

export interface Check {
  of: Verified;
  digest: Digest;
}

export interface Streamed {
  actual: Digest;
  compressed: boolean;
  /** The source's compression, when it was compressed. */
  compression?: Compression;
  /** The file now holding the downloaded (decoded) image. */
  path: string;
  /** The file holding every byte of the source's compressed file, when it was kept (resume or keepCompressed). */
  compressedPath?: string;
  bytes: number;
}

/** A sink for bytes that were written elsewhere already (the kept file). */
function discard(): Writable {
  return new Writable({ write: (_chunk, _encoding, done) => done() });
}

/** Lowers the decoder's CPU priority; where that is not allowed it simply runs at the normal one. */
function setPriority(decoder: DecoderProcess, nice: number): void {
  if (decoder.pid === undefined) return;
  try {
    osSetPriority(decoder.pid, nice);
  } catch {
    // not permitted here: decoding at normal priority is still correct
  }
}

/** Checks every 250 ms how far the decoder has written; past the limit it kills it and remembers why. */
function watchDecoder(
  decoder: DecoderProcess,
  limit: SizeLimit,
  where: string,
): { stop(): void; error(): TemplatesError | undefined } {
  let error: TemplatesError | undefined;
  const timer = setInterval(() => {
    void decoder.written().then((bytes) => {
      if (bytes !== undefined && bytes > limit.bytes && !error) {
        error = sizeError(where, limit, bytes, true);
        decoder.kill();
      }
    });
  }, 250);
  timer.unref();
  return { stop: () => clearInterval(timer), error: () => error };
}

/**
 * With output 'pipe': the decoded bytes, counted against the size limit, through the hasher to the file (sparse).
 * Without, the decoder writes the file itself and there is nothing to wait for here.
 */
function decodedInto(
  child: DecoderProcess,
  fd: number,
  hashers: Transform[],
  limit: SizeLimit,
  tooMany: (bytes: number) => TemplatesError,
  opts: { signal?: AbortSignal },
): Array<Promise<void>> {
  if (!child.stdout) return [];
  const decoded = new Counter(undefined, { bytes: limit.bytes, tooMany });
  return [
    pipeline([child.stdout, decoded, ...hashers, createSparseWriter(fd)] as unknown as [Readable, Writable], opts),
  ];
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

/** Hashes either the bytes streaming through (a Transform) or a file right behind its writer (a worker reading it). */
type Hashing =
  | { kind: 'stream'; hasher: ParallelHasher | InlineHasher }
  | { kind: 'file'; hasher: FollowHasher; path: string }
  | { kind: 'fifo'; hasher: FifoSink };

/** Starts the hashing the plan chose: over the passing bytes, behind a file's writer, or the FIFO's worker (started already). */
function startHashing(
  kind: HashingPlan,
  algorithm: Digest['algorithm'],
  files: { output: string; kept?: string },
  sink?: FifoSink,
): Hashing {
  if (kind === 'fifo') return { kind: 'fifo', hasher: sink! };
  if (kind === 'inline') return { kind: 'stream', hasher: new InlineHasher(algorithm) };
  if (kind === 'parallel') return { kind: 'stream', hasher: new ParallelHasher(algorithm) };
  const path = kind === 'follow-output' ? files.output : files.kept!;
  return { kind: 'file', hasher: new FollowHasher(path, algorithm), path };
}

/** How compressed bytes are decoded: a child process writing the output file itself, or lzma-native in this process. */
type Decoding = { kind: 'process'; compression: Compression; path: string } | { kind: 'lzma-native' };

async function chooseDecoding(ctx: Context, compression: Compression): Promise<Decoding> {
  if (compression === 'zst') return { kind: 'process', compression, path: checkZstd(await ctx.zstd()) };
  const decoder = checkDecoder(await ctx.decoder());
  return decoder.kind === 'xz' ? { kind: 'process', compression, path: decoder.path } : decoder;
}

/**
 * Streams the source into a temp file in one pass, hashing what `check` covers. xz data goes through `xz -T0`
 * (zstd data through `zstd -d --sparse`). When the compressed bytes are what is verified, the decoder writes the
 * output itself (sparse) and a worker hashes the kept partial copy from the page cache right behind its writer;
 * when the image is, the decoder writes a FIFO that a worker reads, hashes and writes sparse (fifo-sink.ts). So no
 * byte is copied through this thread twice, no pass waits for another, and no hole is ever read. A small source
 * (ctx.inlineHashMaxBytes) is hashed on this thread instead. With
 * `targets.partial`, the source's bytes are kept for resume (the compressed copy, or the output itself when
 * uncompressed); with `targets.keep`, compressed bytes are copied there when there is no partial file to keep them;
 * `replay` is a kept prefix to continue from.
 */
export async function streamToFile(
  ctx: Context,
  image: OpenedImage,
  targets: { output: string; partial?: PartialFiles; keep?: string },
  check: Check,
  replay: PartialDownload | undefined,
  limit: SizeLimit,
  options: StreamOptions,
): Promise<Streamed> {
  const { signal } = options;
  const where = image.location;
  const resumed = replay !== undefined;
  const head = resumed
    ? await readHead(replay.path, 6)
    : await peek(image.body, 6).catch((error: unknown) => {
        throw classify(error, where, signal, targets.output);
      });
  const compression = compressionOf(head);
  const compressed = compression !== undefined;
  const decoder = compression ? await chooseDecoding(ctx, compression) : undefined;
  const counter = (bytes: number) => options.onBytes?.(bytes, image.size, where);
  const opts = signal ? { signal } : {};
  const algorithm = check.digest.algorithm;
  // Hashing a small source here costs less than starting a worker thread for it.
  const small = image.size !== undefined && image.size <= ctx.inlineHashMaxBytes;
  // Uncompressed and resumable: the partial file is the output itself. Compressed: the partial keeps the compressed bytes.
  const output = !compressed && targets.partial ? targets.partial.path : targets.output;
  const teePath = compressed ? (targets.partial?.path ?? targets.keep) : undefined;
  const plan = planStream({
    compressed,
    ...(decoder ? { decoder: decoder.kind } : {}),
    verifies: check.of === 'image' ? 'image' : 'compressed',
    resumed,
    small,
    kept: teePath !== undefined,
    fifo: ctx.fifo,
    decodeBehind: options.decodeBehind !== undefined,
  });
  const handles: FileHandle[] = [];
  let hashing: Hashing | undefined;
  let stopWriteback: (() => Promise<void>) | undefined;
  let watch: ReturnType<typeof watchDecoder> | undefined;
  let early: Digest | undefined;
  const tooMany = (bytes: number) => sizeError(where, limit, bytes, true);
  const openFile = async (path: string, flags: string) => {
    const handle = await open(path, flags).catch((error: unknown) => {
      throw storeIoError(error, path, 'cannot create');
    });
    handles.push(handle);
    return handle;
  };
  try {
    const fd = await openFile(output, resumed && !compressed ? 'r+' : 'w');
    stopWriteback = startWriteback(fd);
    if (!decoder) {
      // Uncompressed: the body continues the kept prefix in place; the hasher reads the file from its start.
      const arrived = new Counter(counter, { bytes: limit.bytes, tooMany });
      arrived.bytes = resumed ? replay.offset : 0;
      // From its start, the file is hashed as it passes (on a worker unless small: reading the sparse file back would
      // fault in a zeroed page per hole); a resumed one by a worker reading it from its start, kept prefix included.
      hashing = startHashing(plan.hashing, algorithm, { output });
      const passing = hashing.kind === 'stream' ? hashing.hasher : undefined;
      await pipeline(
        [image.body, arrived, ...(passing ? [passing] : []), createSparseWriter(fd.fd, arrived.bytes)] as unknown as [
          Readable,
          Writable,
        ],
        opts,
      );
      await fd.sync();
      if (limit.declared && arrived.bytes !== limit.bytes) throw sizeError(where, limit, arrived.bytes, false);
      return {
        actual:
          hashing.kind === 'stream'
            ? await hashing.hasher.digest()
            : hashing.kind === 'file'
              ? await hashing.hasher.finish(arrived.bytes)
              : (await hashing.hasher.done).digest,
        compressed,
        path: output,
        bytes: arrived.bytes,
      };
    }
    // Compressed: the kept prefix is replayed from the partial file, so every byte flows through the decoder again.
    const tee = teePath ? await openFile(teePath, resumed ? 'a' : 'w') : undefined;
    const source = sourceBytes(image.body, resumed ? { path: replay.path, length: replay.offset } : undefined, tee);
    const arrived = new Counter(counter);
    // The image's digest is taken as the decoded bytes pass: reading them back from the sparse file would fault in a
    // zeroed page per hole (~2 s of system time per 2 GiB). Where the plan says so, a decoder process writes them to a
    // FIFO that a worker reads, hashes and writes sparse; when the FIFO cannot be made, through a pipe here.
    const sink = plan.decoderWrites === 'fifo' ? await startFifoSink(output, fd.fd, algorithm, limit.bytes) : undefined;
    const chosen = plan.decoderWrites === 'fifo' && !sink ? plan.fallback! : plan;
    hashing = startHashing(chosen.hashing, algorithm, { output, ...(teePath ? { kept: teePath } : {}) }, sink);
    const streamed = hashing.kind === 'stream' ? hashing.hasher : undefined;
    const before: Transform[] = streamed && chosen.hashes === 'compressed' ? [arrived, streamed] : [arrived];
    const after: Transform[] = streamed && chosen.hashes === 'decoded' ? [streamed] : [];
    /** The decoder writing the file (watched for the size limit), the FIFO (whose write end it now holds alone) or a pipe. */
    const startDecoder = async (process: Decoding & { kind: 'process' }, nice?: number): Promise<DecoderProcess> => {
      const child = spawnDecoder(
        process.compression,
        process.path,
        chosen.decoderWrites === 'file' ? fd.fd : sink ? sink.writeEnd.fd : 'pipe',
        where,
        signal,
        ctx.xzThreads,
      );
      await sink?.writeEnd.close();
      if (nice !== undefined) setPriority(child, nice);
      watch = chosen.decoderWrites === 'file' ? watchDecoder(child, limit, where) : undefined;
      return child;
    };
    // The decoded side's stages: the FIFO's worker, or the pipe's pipeline (neither when the decoder writes the file).
    const decodedStages = (child: DecoderProcess): Array<Promise<void>> =>
      sink
        ? [
            sink.done.then(
              () => undefined,
              (error: unknown) => {
                throw error instanceof TooLargeError ? tooMany(error.bytes) : error;
              },
            ),
          ]
        : decodedInto(child, fd.fd, after, limit, tooMany, opts);
    if (chosen.route === 'lzma-native' || decoder.kind === 'lzma-native') {
      const decoded = new Counter(undefined, { bytes: limit.bytes, tooMany });
      await pipeline(
        [source, ...before, lzmaNativeDecoder(), decoded, ...after, createSparseWriter(fd.fd)] as unknown as [
          Readable,
          Writable,
        ],
        opts,
      );
    } else if (chosen.route === 'decode-behind' && options.decodeBehind && teePath && tee) {
      // The body goes to the kept file only; the decoder reads that file behind it, so the download never waits for decoding.
      const body = sourceBytes(image.body, undefined, tee);
      arrived.bytes = resumed ? replay.offset : 0;
      const stopReading = new AbortController();
      let finalLength: number | undefined;
      const download = pipeline([body, ...before, discard()] as unknown as [Readable, Writable], opts).then(
        async () => {
          finalLength = arrived.bytes;
          // The fast path's digest is known as soon as the last byte is on disk: say so before decoding ends.
          if (check.of !== 'image' && hashing && hashing.kind !== 'fifo') {
            early =
              hashing.kind === 'file' ? await hashing.hasher.finish(arrived.bytes) : await hashing.hasher.digest();
            if (sameDigest(early, check.digest)) options.onCompressedVerified?.();
          }
        },
        (error: unknown) => {
          stopReading.abort(error);
          throw error;
        },
      );
      const child = await startDecoder(decoder, options.decodeBehind.nice);
      const reading = await openFile(teePath, 'r');
      const stopped = AbortSignal.any([stopReading.signal, ...(signal ? [signal] : [])]);
      await settle([
        download,
        pumpFile(reading, child.stdin, { end: () => finalLength, signal: stopped }),
        ...decodedStages(child),
        child.done,
      ]);
      watch?.stop();
    } else {
      const child = await startDecoder(decoder);
      await settle([
        pipeline([source, ...before, child.stdin] as unknown as [Readable, Writable], opts),
        ...decodedStages(child),
        child.done,
      ]);
      watch?.stop();
    }
    await fd.sync();
    // The exact check: the watch only samples, and the decoder may end in a hole that it seeks over.
    const decodedSize = (await fd.stat()).size;
    if (decodedSize > limit.bytes || (limit.declared && decodedSize !== limit.bytes))
      throw sizeError(where, limit, decodedSize, false);
    const actual =
      early ??
      (hashing.kind === 'fifo'
        ? (await hashing.hasher.done).digest
        : hashing.kind === 'stream'
          ? await hashing.hasher.digest()
          : await hashing.hasher.finish(hashing.path === output ? decodedSize : arrived.bytes));
    return {
      actual,
      compressed,
      compression,
      path: output,
      bytes: arrived.bytes,
      ...(teePath ? { compressedPath: teePath } : {}),
    };
  } catch (error) {
    throw watch?.error() ?? classify(error, where, signal, output);
  } finally {
    watch?.stop();
    await stopWriteback?.();
    await Promise.all([hashing?.hasher.close(), ...handles.map((handle) => handle.close().catch(() => undefined))]);
  }
}

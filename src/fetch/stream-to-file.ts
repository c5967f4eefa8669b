// Stream one source into a temp file in one pass: plan the way (stream-plan.ts), open the files, run the plan's executor.
import { type FileHandle, open } from 'node:fs/promises';
import type { Context } from '../context.js';
import { storeIoError } from '../errors.js';
import { peek } from '../util/peek.js';
import { readHead } from '../util/read-head.js';
import { type Compression, checkDecoder, checkZstd } from './decode.js';
import { compressionOf } from './detect.js';
import { classify, type SizeLimit, sizeError } from './download-errors.js';
import { type FifoSink, startFifoSink } from './fifo-sink.js';
import type { Hasher } from './hasher.js';
import type { PartialDownload, PartialFiles } from './partial.js';
import type { OpenedImage } from './source.js';
import { streamBehind } from './stream-behind.js';
import { streamDecoder, streamLzmaNative } from './stream-decoded.js';
import type { Check, DecoderTool, Executed, StreamJob, StreamOptions } from './stream-job.js';
import { startHashing } from './stream-job.js';
import { planStream } from './stream-plan.js';
import { streamPlain } from './stream-plain.js';
import { startWriteback } from './writeback.js';

export interface Streamed {
  actual: Executed['actual'];
  compressed: boolean;
  /** The source's compression, when it was compressed. */
  compression?: Compression;
  /** The file now holding the downloaded (decoded) image. */
  path: string;
  /** The file holding every byte of the source's compressed file, when it was kept (resume or keepCompressed). */
  compressedPath?: string;
  bytes: number;
}

/** How compressed bytes are decoded: a child process (xz, zstd), or lzma-native in this process. */
async function chooseDecoder(ctx: Context, compression: Compression): Promise<DecoderTool | 'lzma-native'> {
  if (compression === 'zst') return { compression, path: checkZstd(await ctx.zstd()) };
  const decoder = checkDecoder(await ctx.decoder());
  return decoder.kind === 'xz' ? { compression, path: decoder.path } : 'lzma-native';
}

/**
 * Streams the source into a temp file in one pass, hashing what `check` covers; no byte is copied through this thread
 * twice, no pass waits for another, and no hole is ever read (docs/architecture.md, "One pass"). With
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
  const head = replay
    ? await readHead(replay.path, 6)
    : await peek(image.body, 6).catch((error: unknown) => {
        throw classify(error, where, signal, targets.output);
      });
  const compression = compressionOf(head);
  const decoder = compression ? await chooseDecoder(ctx, compression) : undefined;
  // Uncompressed and resumable: the partial file is the output itself. Compressed: the partial keeps the compressed bytes.
  const output = !compression && targets.partial ? targets.partial.path : targets.output;
  const keptPath = compression ? (targets.partial?.path ?? targets.keep) : undefined;
  const plan = planStream({
    compressed: compression !== undefined,
    ...(decoder ? { decoder: decoder === 'lzma-native' ? ('lzma-native' as const) : ('process' as const) } : {}),
    verifies: check.of === 'image' ? 'image' : 'compressed',
    resumed: replay !== undefined,
    // Hashing a small source here costs less than starting a worker thread for it.
    small: image.size !== undefined && image.size <= ctx.inlineHashMaxBytes,
    kept: keptPath !== undefined,
    fifo: ctx.fifo,
    decodeBehind: options.decodeBehind !== undefined,
  });
  const handles: FileHandle[] = [];
  let hasher: Hasher | undefined;
  let stopWriteback: (() => Promise<void>) | undefined;
  const openFile = async (path: string, flags: string) => {
    const handle = await open(path, flags).catch((error: unknown) => {
      throw storeIoError(error, path, 'cannot create');
    });
    handles.push(handle);
    return handle;
  };
  try {
    const handle = await openFile(output, replay && !compression ? 'r+' : 'w');
    stopWriteback = startWriteback(handle);
    const kept = keptPath ? { path: keptPath, handle: await openFile(keptPath, replay ? 'a' : 'w') } : undefined;
    // Where the plan has a decoder process write a FIFO: its worker hashes; when no FIFO can be made, the plan's pipe.
    const tool = decoder === 'lzma-native' ? undefined : decoder;
    const sink: FifoSink | undefined =
      plan.decoderWrites === 'fifo'
        ? await startFifoSink(output, handle.fd, check.digest.algorithm, limit.bytes)
        : undefined;
    const chosen = plan.decoderWrites === 'fifo' && !sink ? plan.fallback! : plan;
    const hashing = startHashing(
      chosen.hashing,
      check.digest.algorithm,
      { output, ...(keptPath ? { kept: keptPath } : {}) },
      sink,
    );
    hasher = hashing.hasher;
    const job: StreamJob = {
      ctx,
      image,
      plan: chosen,
      check,
      limit,
      options,
      output: { path: output, handle },
      ...(replay ? { replay } : {}),
      ...(kept ? { kept } : {}),
      ...hashing,
      tooMany: (bytes) => sizeError(where, limit, bytes, true),
      openFile,
    };
    const done =
      chosen.route === 'plain'
        ? await streamPlain(job)
        : chosen.route === 'lzma-native' || !tool
          ? await streamLzmaNative(job)
          : chosen.route === 'decode-behind'
            ? await streamBehind(job, tool, options.decodeBehind!.nice, sink)
            : await streamDecoder(job, tool, sink);
    return {
      actual: done.actual,
      compressed: compression !== undefined,
      ...(compression ? { compression } : {}),
      path: output,
      bytes: done.arrived,
      ...(keptPath ? { compressedPath: keptPath } : {}),
    };
  } catch (error) {
    throw classify(error, where, signal, output);
  } finally {
    await stopWriteback?.();
    await Promise.all([hasher?.close(), ...handles.map((handle) => handle.close().catch(() => undefined))]);
  }
}

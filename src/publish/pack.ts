// One pass over an image for the publisher: read (decoding xz), hash, and write a multi-block `.xz` (and a `.zst`) beside it.
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat, utimes } from 'node:fs/promises';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { abortError, outputIoError } from '../errors.js';
import { HEAD_BYTES } from '../fetch/detect.js';
import { atomicTempPath, fsyncPath } from '../util/atomic-write.js';
import { HashTap } from './hash-tap.js';
import { DECOMPRESS_ARGS, compressArgs, spawnFilter, zstdArgs, type CompressOptions } from './xz.js';

export interface PackPlan {
  /** The image as found: plain, or xz-compressed. */
  input: { path: string; xz: boolean };
  /** Where the multi-block `.xz` goes; may be the input itself (an xz re-compressed in place, keeping its mtime). */
  output: string;
  /** False: the input is an xz already fit to serve; only read and hash it. */
  compress: boolean;
  xz: string;
  compression: CompressOptions;
  signal?: AbortSignal;
  /** Uncompressed bytes read so far. */
  onBytes?: (bytes: number) => void;
  /** Also write a `.zst` there, in the same pass (its encoder runs beside xz's). */
  zst?: { output: string; zstd: string; level: number };
}

export interface Packed {
  /** Bytes and digests of the uncompressed image. */
  size: number;
  sha1: string;
  sha256: string;
  head: Buffer;
  /** Bytes and SHA-256 of the `.xz` now at `output`. */
  compressedSize: number;
  compressedSha256: string;
  /** Bytes and SHA-256 of the `.zst` now at `zst.output`, when one was asked for. */
  zst?: { size: number; sha256: string };
}

/** Writes every chunk to each target and waits for all of them: the slowest encoder sets the pace. */
function fanOut(targets: Writable[]): Writable {
  const all = (
    start: (target: Writable, done: (error?: Error | null) => void) => void,
    callback: (error?: Error | null) => void,
  ) => {
    let left = targets.length;
    let failure: Error | null | undefined;
    for (const target of targets)
      start(target, (error) => {
        failure ??= error;
        if (--left === 0) callback(failure);
      });
  };
  return new Writable({
    highWaterMark: 1024 * 1024,
    write: (chunk: Buffer, _encoding, callback) => all((target, done) => target.write(chunk, done), callback),
    final: (callback) => all((target, done) => target.end(() => done()), callback),
  });
}

const sink = () => new Writable({ write: (_chunk, _encoding, callback) => callback() });

/** The first `bytes` decoded bytes of an xz file (xz is stopped as soon as they arrived). */
export async function readXzHead(xz: string, path: string, bytes: number, signal?: AbortSignal): Promise<Buffer> {
  const decoder = spawnFilter(xz, DECOMPRESS_ARGS, path, signal);
  const input = createReadStream(path);
  input.pipe(decoder.stdin).on('error', () => {});
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of decoder.stdout as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= bytes) break;
    }
    if (total < bytes) await decoder.done;
    return Buffer.concat(chunks, total).subarray(0, bytes);
  } finally {
    input.destroy();
    decoder.kill();
  }
}

/** Runs the pass; on any failure the output is untouched (the new `.xz` is written to a temp file and renamed). */
export async function packImage(plan: PackPlan): Promise<Packed> {
  const { input, signal } = plan;
  const streamOptions = signal ? { signal } : {};
  const stages: Array<Promise<unknown>> = [];
  const children: Array<{ kill(): void; done: Promise<void> }> = [];
  const image = new HashTap(['sha1', 'sha256'], {
    headBytes: HEAD_BYTES,
    ...(plan.onBytes ? { onBytes: plan.onBytes } : {}),
  });
  const temp = plan.compress ? atomicTempPath(plan.output) : undefined;
  const zstTemp = plan.zst ? atomicTempPath(plan.zst.output) : undefined;
  let compressed: HashTap | undefined;
  let zstd: HashTap | undefined;
  try {
    let uncompressed: Readable;
    const read = createReadStream(input.path, { highWaterMark: 1024 * 1024 });
    if (input.xz) {
      const decoder = spawnFilter(plan.xz, DECOMPRESS_ARGS, input.path, signal);
      children.push(decoder);
      if (!plan.compress) {
        compressed = new HashTap(['sha256']);
        stages.push(
          pipeline(read, compressed, decoder.stdin, streamOptions).catch(fsErrors(input.path, 'cannot read')),
        );
      } else stages.push(pipeline(read, decoder.stdin, streamOptions).catch(fsErrors(input.path, 'cannot read')));
      stages.push(decoder.done);
      uncompressed = decoder.stdout;
    } else uncompressed = read;

    // The encoders, each writing its temp file through a hash; the image's bytes go to all of them at once.
    const encode = (command: string, args: string[], tool: 'xz' | 'zstd', out: string) => {
      const encoder = spawnFilter(command, args, input.path, signal, tool);
      children.push(encoder);
      const tap = new HashTap(['sha256']);
      stages.push(
        pipeline(encoder.stdout, tap, createWriteStream(out, { flags: 'wx' }), streamOptions).catch(
          fsErrors(out, 'cannot write'),
        ),
      );
      stages.push(encoder.done);
      return { stdin: encoder.stdin, tap };
    };
    const targets: Writable[] = [];
    if (plan.compress) {
      const xz = encode(plan.xz, compressArgs(plan.compression), 'xz', temp!);
      compressed = xz.tap;
      targets.push(xz.stdin);
    }
    if (plan.zst) {
      const zst = encode(plan.zst.zstd, zstdArgs(plan.zst.level), 'zstd', zstTemp!);
      zstd = zst.tap;
      targets.push(zst.stdin);
    }
    const target = targets.length === 0 ? sink() : targets.length === 1 ? targets[0]! : fanOut(targets);
    stages.push(pipeline(uncompressed, image, target, streamOptions).catch(fsErrors(input.path, 'cannot read')));

    await settle(stages, children);
    if (signal?.aborted) throw abortError(signal);
    if (zstTemp) {
      await fsyncPath(zstTemp).catch((error: unknown) => {
        throw outputIoError(error, zstTemp, 'cannot sync');
      });
    }
    if (temp) {
      await fsyncPath(temp).catch((error: unknown) => {
        throw outputIoError(error, temp, 'cannot sync');
      });
      // Re-compressing an xz in place keeps its mtime: the file's timestamp is the template's, not ours.
      if (plan.output === input.path) {
        const before = await stat(input.path);
        await utimes(temp, before.atime, before.mtime);
      }
      await rename(temp, plan.output).catch((error: unknown) => {
        throw outputIoError(error, plan.output, 'cannot write');
      });
    }
    if (zstTemp) {
      await rename(zstTemp, plan.zst!.output).catch((error: unknown) => {
        throw outputIoError(error, plan.zst!.output, 'cannot write');
      });
    }
    return {
      size: image.bytes,
      sha1: image.hex('sha1'),
      sha256: image.hex('sha256'),
      head: image.head(),
      // No .xz at all (a plain image packed only to .zst, as push --layer zst does): 0 and ''.
      compressedSize: compressed?.bytes ?? 0,
      compressedSha256: compressed?.hex('sha256') ?? '',
      ...(zstd ? { zst: { size: zstd.bytes, sha256: zstd.hex('sha256') } } : {}),
    };
  } finally {
    for (const child of children) child.kill();
    await Promise.all([temp, zstTemp].map((path) => path && rm(path, { force: true })));
  }
}

/** Errors that only say another stage failed first (a closed pipe, a destroyed stream). */
const isConsequence = (error: unknown) =>
  ['EPIPE', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'ABORT_ERR'].includes(
    (error as { code?: string })?.code ?? '',
  );

/**
 * Waits for every stage, stopping the others as soon as one fails. The earliest failure that is a cause wins:
 * the xz processes killed because of it fail too, later, and must not take its place.
 */
async function settle(stages: Array<Promise<unknown>>, children: Array<{ kill(): void }>): Promise<void> {
  let first: unknown;
  const watched = stages.map((stage) =>
    stage.catch((error: unknown) => {
      if (first === undefined && !isConsequence(error)) first = error;
      for (const child of children) child.kill();
      throw error;
    }),
  );
  const failures = (await Promise.allSettled(watched)).flatMap((result) =>
    result.status === 'rejected' ? [result.reason as unknown] : [],
  );
  if (failures.length) throw first ?? failures[0];
}

/** Filesystem errors (they carry a syscall) become OUTPUT_IO naming the file; stream errors pass as they are. */
function fsErrors(path: string, doing: string) {
  return (error: unknown): never => {
    throw (error as NodeJS.ErrnoException)?.syscall ? outputIoError(error, path, doing) : error;
  };
}

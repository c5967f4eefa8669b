// The decoding routes fed from this thread: lzma-native in this process, or a decoder process (xz, zstd) given the bytes here.
import type { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../repository/digest.js';
import { Counter } from './counter.js';
import { lzmaNativeDecoder } from './decode.js';
import { settle, sizeError } from './download-errors.js';
import { startDecoder } from './decoder-run.js';
import type { FifoSink } from './fifo-sink.js';
import { sourceBytes } from './source-bytes.js';
import { createSparseWriter } from './sparse-writer.js';
import type { DecoderTool, Executed, StreamJob } from './stream-job.js';

/** The compressed bytes as they arrive (after a replayed kept prefix, copied to the kept file), counted for progress. */
export function arrivingBytes(job: StreamJob): { source: AsyncIterable<Buffer>; arrived: Counter } {
  const { image, replay, kept, options } = job;
  const source = sourceBytes(
    image.body,
    replay ? { path: replay.path, length: replay.offset } : undefined,
    kept?.handle,
  );
  return { source, arrived: new Counter((bytes) => options.onBytes?.(bytes, image.size, image.location)) };
}

/** Where the passing hasher goes: before the decoder (it hashes the compressed bytes) or after it (the decoded ones). */
export function hasherPlace(job: StreamJob, arrived: Transform): { before: Transform[]; after: Transform[] } {
  const { passing, plan } = job;
  return {
    before: passing && plan.hashes === 'compressed' ? [arrived, passing] : [arrived],
    after: passing && plan.hashes === 'decoded' ? [passing] : [],
  };
}

/**
 * Once decoding ended: the image on disk, its size checked exactly (a decoder writing the file is only sampled, and
 * may end in a hole it seeks over), and the digest (`early` when the download had it before decoding ended).
 */
export async function decodedResult(job: StreamJob, arrived: number, early?: Digest): Promise<Executed> {
  const { output, limit, image } = job;
  await output.handle.sync();
  const decodedSize = (await output.handle.stat()).size;
  if (decodedSize > limit.bytes || (limit.declared && decodedSize !== limit.bytes))
    throw sizeError(image.location, limit, decodedSize, false);
  return { actual: early ?? (await job.hasher.digest(arrived)), arrived };
}

/** lzma-native: decoded on this thread, in the one pipeline. */
export async function streamLzmaNative(job: StreamJob): Promise<Executed> {
  const { source, arrived } = arrivingBytes(job);
  const { before, after } = hasherPlace(job, arrived);
  const decoded = new Counter(undefined, { bytes: job.limit.bytes, tooMany: job.tooMany });
  await pipeline(
    [
      source,
      ...before,
      lzmaNativeDecoder(),
      decoded,
      ...after,
      createSparseWriter(job.output.handle.fd),
    ] as unknown as [Readable, Writable],
    job.options.signal ? { signal: job.options.signal } : {},
  );
  return decodedResult(job, arrived.bytes);
}

/** A decoder process given the bytes from here; it writes the image itself, the FIFO's worker, or a pipe back here. */
export async function streamDecoder(job: StreamJob, tool: DecoderTool, sink?: FifoSink): Promise<Executed> {
  const { source, arrived } = arrivingBytes(job);
  const { before, after } = hasherPlace(job, arrived);
  const run = await startDecoder(job, tool, sink, after);
  try {
    await settle([
      pipeline([source, ...before, run.child.stdin] as unknown as [Readable, Writable], {
        ...(job.options.signal ? { signal: job.options.signal } : {}),
      }),
      ...run.stages,
      run.child.done,
    ]);
  } catch (error) {
    throw run.stop() ?? error;
  }
  run.stop();
  return decodedResult(job, arrived.bytes);
}

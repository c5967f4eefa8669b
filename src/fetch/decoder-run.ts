// A decoder process started for a stream plan: writing the image itself (watched for the size limit), a FIFO, or a pipe here.
import { setPriority as osSetPriority } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TemplatesError } from '../errors.js';
import { Counter } from './counter.js';
import { type DecoderProcess, spawnDecoder } from './decode.js';
import { sizeError } from './download-errors.js';
import { type FifoSink, TooLargeError } from './fifo-sink.js';
import { createSparseWriter } from './sparse-writer.js';
import type { DecoderTool, StreamJob } from './stream-job.js';

export interface DecoderRun {
  child: DecoderProcess;
  /** What must end besides the decoder: the FIFO's worker, or the pipe's pipeline into the image (none when it writes the file). */
  stages: Array<Promise<void>>;
  /** Stops watching; the size-limit error the watch found, if it killed the decoder. */
  stop(): TemplatesError | undefined;
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
function watchDecoder(job: StreamJob, child: DecoderProcess): () => TemplatesError | undefined {
  let error: TemplatesError | undefined;
  const timer = setInterval(() => {
    void child.written().then((bytes) => {
      if (bytes !== undefined && bytes > job.limit.bytes && !error) {
        error = sizeError(job.image.location, job.limit, bytes, true);
        child.kill();
      }
    });
  }, 250);
  timer.unref();
  return () => {
    clearInterval(timer);
    return error;
  };
}

/** The decoded bytes through a pipe: counted against the size limit, through the passing hasher, into the image (sparse). */
function pipedInto(job: StreamJob, child: DecoderProcess, after: Writable[]): Promise<void> {
  const decoded = new Counter(undefined, { bytes: job.limit.bytes, tooMany: job.tooMany });
  return pipeline(
    [child.stdout, decoded, ...after, createSparseWriter(job.output.handle.fd)] as unknown as [Readable, Writable],
    job.options.signal ? { signal: job.options.signal } : {},
  );
}

/**
 * Starts `tool` writing where the plan says: the image file itself, the FIFO (whose write end it then holds alone), or
 * a pipe to this thread through `after`.
 */
export async function startDecoder(
  job: StreamJob,
  tool: DecoderTool,
  sink: FifoSink | undefined,
  after: Writable[],
  nice?: number,
): Promise<DecoderRun> {
  const writesFile = job.plan.decoderWrites === 'file';
  const out = writesFile ? job.output.handle.fd : sink ? sink.writeEnd.fd : 'pipe';
  const child = spawnDecoder(
    tool.compression,
    tool.path,
    out,
    job.image.location,
    job.options.signal,
    job.ctx.xzThreads,
  );
  await sink?.writeEnd.close();
  if (nice !== undefined) setPriority(child, nice);
  const stop = writesFile ? watchDecoder(job, child) : () => undefined;
  const stages = sink
    ? [
        sink.done.then(
          () => undefined,
          (error: unknown) => {
            throw error instanceof TooLargeError ? job.tooMany(error.bytes) : error;
          },
        ),
      ]
    : writesFile
      ? []
      : [pipedInto(job, child, after)];
  return { child, stages, stop };
}

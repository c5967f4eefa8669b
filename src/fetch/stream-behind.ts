// The decode-behind route (a cache host's): the download writes the kept file at the network's pace, the decoder reads it behind.
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Digest, sameDigest } from '../repository/digest.js';
import { settle } from './download-errors.js';
import { startDecoder } from './decoder-run.js';
import type { FifoSink } from './fifo-sink.js';
import { pumpFile } from './file-pump.js';
import { sourceBytes } from './source-bytes.js';
import { decodedResult, hasherPlace, arrivingBytes } from './stream-decoded.js';
import type { DecoderTool, Executed, StreamJob } from './stream-job.js';

/** A sink for bytes that were written elsewhere already (the kept file). */
function discard(): Writable {
  return new Writable({ write: (_chunk, _encoding, done) => done() });
}

/** The download never waits for decoding; on the fast path the digest is known (and said) as soon as the last byte is on disk. */
export async function streamBehind(
  job: StreamJob,
  tool: DecoderTool,
  nice: number,
  sink?: FifoSink,
): Promise<Executed> {
  const { image, replay, kept, options, check, hasher } = job;
  const { arrived } = arrivingBytes(job);
  const { before, after } = hasherPlace(job, arrived);
  // The body goes to the kept file only (a kept prefix is there already).
  const body = sourceBytes(image.body, undefined, kept!.handle);
  arrived.bytes = replay?.offset ?? 0;
  const stopReading = new AbortController();
  let finalLength: number | undefined;
  let early: Digest | undefined;
  const signal = options.signal;
  const download = pipeline([body, ...before, discard()] as unknown as [Readable, Writable], {
    ...(signal ? { signal } : {}),
  }).then(
    async () => {
      finalLength = arrived.bytes;
      if (check.of !== 'image' && job.plan.hashing !== 'fifo') {
        early = await hasher.digest(arrived.bytes);
        if (sameDigest(early, check.digest)) options.onCompressedVerified?.();
      }
    },
    (error: unknown) => {
      stopReading.abort(error);
      throw error;
    },
  );
  const run = await startDecoder(job, tool, sink, after, nice);
  const reading = await job.openFile(kept!.path, 'r');
  const stopped = AbortSignal.any([stopReading.signal, ...(signal ? [signal] : [])]);
  try {
    await settle([
      download,
      pumpFile(reading, run.child.stdin, { end: () => finalLength, signal: stopped }),
      ...run.stages,
      run.child.done,
    ]);
  } catch (error) {
    throw run.stop() ?? error;
  }
  run.stop();
  return decodedResult(job, arrived.bytes, early);
}

// The decoded image's digest without copying it through the main thread: the decoder writes a FIFO, a worker reads, hashes and writes sparse.
import { execFile } from 'node:child_process';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { Digest, HashAlgorithm } from '../repository/digest.js';
import type { Hasher } from './hasher.js';
import { workerUrl } from './worker-url.js';
import { type FifoData, type FifoReply, failureError } from './workers/protocol.js';

interface FifoResult {
  digest: Digest;
  /** Bytes the decoder wrote. */
  size: number;
}

/** What the decoder is given as its stdout, and how the other end ends (its worker, workers/fifo-sink.ts, hashes). */
export interface FifoSink extends Hasher {
  /** The FIFO's write-only end, for the decoder's stdout; close it once the decoder started (it holds its own). */
  writeEnd: FileHandle;
  /** Resolves with the digest once the decoder closed its end; rejects with `tooLarge` past the limit. */
  done: Promise<FifoResult>;
  close(): Promise<void>;
}

export class TooLargeError extends Error {
  constructor(readonly bytes: number) {
    super(`more than the limit: ${bytes} bytes`);
  }
}

/**
 * Makes `${output}.fifo` and a worker reading it into the open file `fd`. Undefined where no FIFO can be made
 * (no mkfifo command): the caller then takes the decoded bytes through a pipe instead.
 */
export async function startFifoSink(
  output: string,
  fd: number,
  algorithm: HashAlgorithm,
  limit: number,
): Promise<FifoSink | undefined> {
  const fifo = `${output}.fifo`;
  await rm(fifo, { force: true });
  const made = await promisify(execFile)('mkfifo', ['-m', '600', fifo]).then(
    () => true,
    () => false,
  );
  if (!made) return undefined;
  // Read and write (Linux): opening does not wait for a reader, and the worker's open finds a writer. The decoder
  // gets a write-only end opened once the worker reads: if the worker stops, the decoder's writes fail (EPIPE)
  // instead of filling a FIFO it could read itself.
  const holder = await open(fifo, 'r+');
  const worker = new Worker(workerUrl('fifo-sink'), { workerData: { fifo, fd, algorithm, limit } satisfies FifoData });
  worker.unref();
  let ready: (reading: boolean) => void = () => undefined;
  const opened = new Promise<boolean>((resolve) => (ready = resolve));
  const done = new Promise<FifoResult>((resolve, reject) => {
    worker.on('message', (message: FifoReply) => {
      if ('ready' in message) return ready(true);
      ready(false);
      if ('hex' in message) resolve({ digest: { algorithm, hex: message.hex }, size: message.size });
      else if ('tooLarge' in message) reject(new TooLargeError(message.tooLarge));
      else reject(failureError(`hashing ${output}`, message));
    });
    worker.once('error', (error) => {
      ready(false);
      reject(error);
    });
  });
  done.catch(() => undefined);
  if (!(await opened)) {
    // The worker could not read the FIFO: opening its write end would wait forever. The caller uses a pipe.
    await holder.close();
    await worker.terminate();
    await rm(fifo, { force: true });
    return undefined;
  }
  const writeEnd = await open(fifo, 'w').finally(() => holder.close());
  const close = async () => {
    await writeEnd.close().catch(() => undefined);
    await worker.terminate();
    await rm(fifo, { force: true });
  };
  return { writeEnd, done, close, digest: async () => (await done).digest };
}

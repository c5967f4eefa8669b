// The decoded image's digest without copying it through the main thread: the decoder writes a FIFO, a worker reads, hashes and writes sparse.
import { execFile } from 'node:child_process';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { Digest, HashAlgorithm } from '../repository/digest.js';

/**
 * One reused 1 MiB buffer: read, hash, write the non-zero 4 KiB blocks (aligned to the file offset) at their
 * offsets, leaving holes; past `limit` bytes it stops (closing the FIFO, so the decoder fails on its next write).
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { fifo, fd, algorithm, limit } = workerData;
const hash = require('node:crypto').createHash(algorithm);
const BLOCK = 4096;
const zeros = Buffer.alloc(BLOCK);
const buffer = Buffer.allocUnsafe(1024 * 1024);
let input;
(function run() {
try {
  // A writer holds the FIFO open already, so this does not block.
  input = fs.openSync(fifo, 'r');
  parentPort.postMessage({ ready: true });
  let position = 0;
  for (;;) {
    const n = fs.readSync(input, buffer, 0, buffer.length, null);
    if (n === 0) break;
    if (position + n > limit) {
      parentPort.postMessage({ tooLarge: position + n });
      return;
    }
    hash.update(buffer.subarray(0, n));
    let run = -1;
    for (let offset = 0; offset < n;) {
      const end = Math.min(n, offset + BLOCK - ((position + offset) % BLOCK));
      const zero = buffer.compare(zeros, 0, end - offset, offset, end) === 0;
      if (zero && run >= 0) {
        for (let at = run; at < offset;) at += fs.writeSync(fd, buffer, at, offset - at, position + at);
        run = -1;
      } else if (!zero && run < 0) run = offset;
      offset = end;
    }
    if (run >= 0) for (let at = run; at < n;) at += fs.writeSync(fd, buffer, at, n - at, position + at);
    position += n;
  }
  fs.ftruncateSync(fd, position);
  parentPort.postMessage({ hex: hash.digest('hex'), size: position });
} catch (error) {
  parentPort.postMessage({ error: error.message, code: error.code, syscall: error.syscall });
} finally {
  if (input !== undefined) fs.closeSync(input);
}
})();`;

interface FifoResult {
  digest: Digest;
  /** Bytes the decoder wrote. */
  size: number;
}

/** What the decoder is given as its stdout, and how the other end ends. */
export interface FifoSink {
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
  const worker = new Worker(WORKER, { eval: true, workerData: { fifo, fd, algorithm, limit } });
  worker.unref();
  let ready: (reading: boolean) => void = () => undefined;
  const opened = new Promise<boolean>((resolve) => (ready = resolve));
  const done = new Promise<FifoResult>((resolve, reject) => {
    worker.on(
      'message',
      (message: {
        ready?: true;
        hex?: string;
        size?: number;
        tooLarge?: number;
        error?: string;
        code?: string;
        syscall?: string;
      }) => {
        if (message.ready) return ready(true);
        ready(false);
        if (message.hex !== undefined) resolve({ digest: { algorithm, hex: message.hex }, size: message.size! });
        else if (message.tooLarge !== undefined) reject(new TooLargeError(message.tooLarge));
        // The errno code and syscall carry over: a full disk is the store's failure, not the source's.
        else
          reject(
            Object.assign(new Error(`hashing ${output}: ${message.error}`), {
              code: message.code,
              syscall: message.syscall,
            }),
          );
      },
    );
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
  return { writeEnd, done, close };
}

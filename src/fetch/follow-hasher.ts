// Hashes a file on a worker thread while another writer (xz, the sparse writer) is still writing it, reading right behind it.
import { Worker } from 'node:worker_threads';
import type { Digest, HashAlgorithm } from '../repository/digest.js';

/**
 * The worker reads what is below the file's current size (bytes there are final: the writers only append,
 * or leave holes that read as zeros), in 1 MiB reads from the page cache, and polls while it has caught up.
 * Once told the final size it hashes the rest and answers with the digest.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const hash = require('node:crypto').createHash(workerData.algorithm);
const fd = fs.openSync(workerData.path, 'r');
const buffer = Buffer.allocUnsafe(1024 * 1024);
let position = 0;
let final = -1;
parentPort.on('message', (size) => { final = size; });
function step() {
  try {
    for (;;) {
      const limit = final >= 0 ? final : fs.fstatSync(fd).size;
      // Writers append a few KiB at a time: wait for a whole buffer rather than chase them with tiny reads.
      if (position >= limit || (final < 0 && limit - position < buffer.length)) break;
      const n = fs.readSync(fd, buffer, 0, Math.min(buffer.length, limit - position), position);
      if (n === 0) throw new Error('the file is shorter than its writer said');
      hash.update(buffer.subarray(0, n));
      position += n;
    }
    if (final >= 0 && position >= final) {
      fs.closeSync(fd);
      return parentPort.postMessage({ hex: hash.digest('hex') });
    }
    setTimeout(step, 5);
  } catch (error) {
    parentPort.postMessage({ error: error.message, code: error.code, syscall: error.syscall });
  }
}
step();`;

export class FollowHasher {
  private readonly worker: Worker;
  private readonly result: Promise<string>;

  constructor(
    path: string,
    private readonly algorithm: HashAlgorithm,
  ) {
    this.worker = new Worker(WORKER, { eval: true, workerData: { path, algorithm } });
    // Never what keeps the process alive; close() ends it in every case.
    this.worker.unref();
    this.result = new Promise<string>((resolve, reject) => {
      this.worker.on('message', (message: { hex?: string; error?: string; code?: string; syscall?: string }) => {
        if (message.hex !== undefined) resolve(message.hex);
        // The errno code and syscall carry over: a full disk is the store's failure, not the source's.
        else
          reject(
            Object.assign(new Error(`hashing ${path}: ${message.error}`), {
              code: message.code,
              syscall: message.syscall,
            }),
          );
      });
      this.worker.once('error', reject);
    });
    this.result.catch(() => undefined);
  }

  /** Call once the writer is done: the digest of the file's first `size` bytes. */
  async finish(size: number): Promise<Digest> {
    this.worker.postMessage(size);
    return { algorithm: this.algorithm, hex: await this.result };
  }

  /** Ends the worker; call in every case once done. */
  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

// Hashes a file on a worker thread while another writer (xz, the sparse writer) is still writing it, reading right behind it.
import { Worker } from 'node:worker_threads';
import type { Digest, HashAlgorithm } from '../repository/digest.js';
import type { Hasher } from './hasher.js';
import { workerUrl } from './worker-url.js';
import { type BehindData, type BehindReply, failureError } from './workers/protocol.js';

/** The worker (workers/hash-behind.ts) reads what the writer has written, and the rest once told the final size. */
export class FollowHasher implements Hasher {
  private readonly worker: Worker;
  private readonly result: Promise<string>;

  constructor(
    path: string,
    private readonly algorithm: HashAlgorithm,
  ) {
    this.worker = new Worker(workerUrl('hash-behind'), { workerData: { path, algorithm } satisfies BehindData });
    // Never what keeps the process alive; close() ends it in every case.
    this.worker.unref();
    this.result = new Promise<string>((resolve, reject) => {
      this.worker.on('message', (message: BehindReply) => {
        if ('hex' in message) resolve(message.hex);
        else reject(failureError(`hashing ${path}`, message));
      });
      this.worker.once('error', reject);
    });
    this.result.catch(() => undefined);
  }

  /** Call once the writer is done: the digest of the file's first `size` bytes. */
  async digest(size: number): Promise<Digest> {
    this.worker.postMessage(size);
    return { algorithm: this.algorithm, hex: await this.result };
  }

  /** Ends the worker; call in every case once done. */
  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

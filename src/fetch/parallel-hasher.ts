// A pass-through Transform that hashes on a worker thread, so hashing runs on another core while this thread moves bytes.
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { Digest, HashAlgorithm } from '../repository/digest.js';
import type { Hasher } from './hasher.js';
import { workerUrl } from './worker-url.js';
import type { BatchesData, BatchesReply } from './workers/protocol.js';

/** Bytes gathered into one message to the worker: few messages, one copy per byte. */
const BATCH = 1024 * 1024;
/** Bytes the worker may lag behind before the stream waits for it (bounds memory). */
const MAX_IN_FLIGHT = 4 * BATCH;

export class ParallelHasher extends Transform implements Hasher {
  private readonly worker: Worker;
  private batch: Uint8Array;
  private filled = 0;
  private inFlight = 0;
  private waiting: (() => void) | undefined;
  private result: Promise<string>;
  /** Whole batches the worker has hashed and given back, to be filled again. */
  private readonly spare: Uint8Array[] = [];

  constructor(private readonly algorithm: HashAlgorithm) {
    super({ highWaterMark: BATCH });
    this.worker = new Worker(workerUrl('hash-batches'), { workerData: { algorithm } satisfies BatchesData });
    // Never what keeps the process alive; close() ends it in every case.
    this.worker.unref();
    this.batch = new Uint8Array(BATCH);
    this.result = new Promise<string>((resolve, reject) => {
      this.worker.on('message', (message: BatchesReply) => {
        if ('hex' in message) return resolve(message.hex);
        this.inFlight -= message.done.byteLength;
        if (message.done.byteLength === BATCH) this.spare.push(message.done);
        const wake = this.waiting;
        this.waiting = undefined;
        wake?.();
      });
      // A worker that fails (or cannot start) fails the stream: nothing else would wake a write waiting for it.
      this.worker.once('error', (error) => {
        reject(error);
        this.destroy(error);
      });
    });
    this.result.catch(() => undefined);
  }

  /** Sends the gathered bytes to the worker (transferred, not copied again). */
  private flushBatch(): void {
    if (this.filled === 0) return;
    const data = this.filled === BATCH ? this.batch : this.batch.slice(0, this.filled);
    this.worker.postMessage(data, [data.buffer as ArrayBuffer]);
    this.inFlight += this.filled;
    this.batch = this.spare.pop() ?? new Uint8Array(BATCH);
    this.filled = 0;
  }

  private gather(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(chunk.length - offset, BATCH - this.filled);
      this.batch.set(chunk.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === BATCH) this.flushBatch();
    }
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.gather(chunk);
    this.push(chunk);
    if (this.inFlight <= MAX_IN_FLIGHT) {
      callback();
      return;
    }
    this.waiting = () => callback();
  }

  override _flush(callback: TransformCallback): void {
    this.flushBatch();
    callback();
  }

  /** The digest of every byte that went through; call after the stream ended. */
  async digest(): Promise<Digest> {
    this.flushBatch();
    this.worker.postMessage(null);
    return { algorithm: this.algorithm, hex: await this.result };
  }

  /** Ends the worker; call in every case once done. */
  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

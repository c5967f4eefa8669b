// A pass-through Transform that hashes on a worker thread, so hashing runs on another core while this thread moves bytes.
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { Digest, HashAlgorithm } from '../repository/digest.js';

/** Bytes gathered into one message to the worker: few messages, one copy per byte. */
const BATCH = 1024 * 1024;
/** Bytes the worker may lag behind before the stream waits for it (bounds memory). */
const MAX_IN_FLIGHT = 4 * BATCH;

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const hash = require('node:crypto').createHash(workerData.algorithm);
parentPort.on('message', (data) => {
  if (data === null) return parentPort.postMessage({ hex: hash.digest('hex') });
  hash.update(data);
  // The buffer goes back to be filled again: no garbage, so memory stays at the batches in flight.
  parentPort.postMessage({ done: data }, [data.buffer]);
});`;

export class ParallelHasher extends Transform {
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
    this.worker = new Worker(WORKER, { eval: true, workerData: { algorithm } });
    // Never what keeps the process alive; close() ends it in every case.
    this.worker.unref();
    this.batch = new Uint8Array(BATCH);
    this.result = new Promise<string>((resolve, reject) => {
      this.worker.on('message', (message: { done?: Uint8Array; hex?: string }) => {
        if (message.hex !== undefined) return resolve(message.hex);
        this.inFlight -= message.done?.byteLength ?? 0;
        if (message.done?.byteLength === BATCH) this.spare.push(message.done);
        const wake = this.waiting;
        this.waiting = undefined;
        wake?.();
      });
      this.worker.once('error', reject);
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

// A pass-through Transform that hashes and counts the bytes flowing through it.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { Digest, HashAlgorithm } from '../spec/digest.js';

/** Where a meter starts: a hash already fed with a resumed prefix, and that prefix's length. */
export interface MeterStart {
  hash: Hash;
  bytes: number;
}

export class Meter extends Transform {
  bytes: number;
  private readonly hash: Hash | undefined;
  private readonly algorithm: HashAlgorithm | undefined;

  /** `algorithm` undefined: count only. `onBytes` is told the running total. */
  constructor(algorithm: HashAlgorithm | undefined, private readonly onBytes?: (total: number) => void, start?: MeterStart) {
    super({ highWaterMark: 1024 * 1024 });
    this.algorithm = algorithm;
    this.hash = algorithm ? (start?.hash ?? createHash(algorithm)) : undefined;
    this.bytes = start?.bytes ?? 0;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash?.update(chunk);
    this.onBytes?.(this.bytes);
    callback(null, chunk);
  }

  digest(): Digest {
    if (!this.hash || !this.algorithm) throw new Error('Meter was created without a hash algorithm');
    return { algorithm: this.algorithm, hex: this.hash.digest('hex') };
  }
}

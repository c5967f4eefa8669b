// A pass-through Transform that hashes and counts the bytes flowing through it.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { Digest, HashAlgorithm } from '../spec/digest.js';

export class Meter extends Transform {
  bytes = 0;
  private readonly hash: Hash | undefined;
  private readonly algorithm: HashAlgorithm | undefined;

  /** `algorithm` undefined: count only. `onBytes` is told the running total. */
  constructor(algorithm: HashAlgorithm | undefined, private readonly onBytes?: (total: number) => void) {
    super();
    this.algorithm = algorithm;
    this.hash = algorithm ? createHash(algorithm) : undefined;
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

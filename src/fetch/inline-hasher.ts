// A pass-through Transform that hashes on this thread: for small sources, where starting a worker costs more than hashing.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { Digest, HashAlgorithm } from '../repository/digest.js';
import type { Hasher } from './hasher.js';

export class InlineHasher extends Transform implements Hasher {
  private readonly hash: Hash;

  constructor(private readonly algorithm: HashAlgorithm) {
    super();
    this.hash = createHash(algorithm);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    callback(null, chunk);
  }

  /** The digest of every byte that went through; call after the stream ended. */
  async digest(): Promise<Digest> {
    return { algorithm: this.algorithm, hex: this.hash.digest('hex') };
  }

  /** Nothing to end (the same shape as ParallelHasher). */
  async close(): Promise<void> {}
}

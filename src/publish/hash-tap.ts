// A pass-through Transform that hashes (several algorithms at once), counts, and keeps the first bytes it sees.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { HashAlgorithm } from '../repository/digest.js';

export class HashTap extends Transform {
  bytes = 0;
  private readonly hashes: Map<HashAlgorithm, Hash>;
  private readonly headChunks: Buffer[] = [];
  private headBytes = 0;

  constructor(
    algorithms: HashAlgorithm[],
    private readonly options: { headBytes?: number; onBytes?: (total: number) => void } = {},
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.hashes = new Map(algorithms.map((algorithm) => [algorithm, createHash(algorithm)]));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    for (const hash of this.hashes.values()) hash.update(chunk);
    const wanted = (this.options.headBytes ?? 0) - this.headBytes;
    if (wanted > 0) {
      const piece = chunk.subarray(0, wanted);
      this.headChunks.push(Buffer.from(piece));
      this.headBytes += piece.length;
    }
    this.bytes += chunk.length;
    this.options.onBytes?.(this.bytes);
    callback(null, chunk);
  }

  /** Hex digest of `algorithm`; call once, after the stream has finished. */
  hex(algorithm: HashAlgorithm): string {
    const hash = this.hashes.get(algorithm);
    if (!hash) throw new Error(`HashTap: ${algorithm} was not computed`);
    return hash.digest('hex');
  }

  head(): Buffer {
    return Buffer.concat(this.headChunks, this.headBytes);
  }
}

// A pass-through Transform that counts the bytes flowing through it (progress and the Content-Length check).
import { Transform, type TransformCallback } from 'node:stream';

export class Counter extends Transform {
  bytes = 0;

  /** `onBytes` is told the running total; past `limit` bytes the stream fails with `tooMany()`. */
  constructor(
    private readonly onBytes?: (total: number) => void,
    private readonly limit?: { bytes: number; tooMany: (bytes: number) => Error },
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.limit && this.bytes > this.limit.bytes) {
      callback(this.limit.tooMany(this.bytes));
      return;
    }
    this.onBytes?.(this.bytes);
    callback(null, chunk);
  }
}

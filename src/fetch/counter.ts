// A pass-through Transform that counts the bytes flowing through it (progress and the Content-Length check).
import { Transform, type TransformCallback } from 'node:stream';

export class Counter extends Transform {
  bytes = 0;

  /** `onBytes` is told the running total. */
  constructor(private readonly onBytes?: (total: number) => void) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    callback(null, chunk);
  }
}

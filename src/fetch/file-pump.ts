// A file's bytes into a Writable through a few reused buffers: a fixed range, or a file another writer is still appending to.
import type { FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Reads of 1 MiB into one of 4 buffers, each reused once the writable has taken its bytes (its write callback).
 * A read stream allocates a new buffer per read instead: in the server's heap, the ~300 of a 300 MB image cost
 * ~70 ms of full collections, a third of the time serve took to send it (measured on 2 cores).
 */
const BUFFER_BYTES = 1024 * 1024;
const BUFFERS = 4;
/** How long to wait for more bytes once the reader has caught up with a growing file's writer. */
const POLL_MS = 10;

export interface PumpOptions {
  /** First byte to send (default 0). */
  start?: number;
  /** One past the last byte; for a growing file, a function giving it once its writer knows it (undefined until then). */
  end: number | (() => number | undefined);
  /** Stops the pump with its reason (a failed download). */
  signal?: AbortSignal;
  /** Bytes handed to the writable, as they go. */
  onBytes?: (bytes: number) => void;
}

/**
 * Writes the bytes, ends `out` and resolves once it finished. Resolves early, quietly, when `out` is destroyed (a
 * client went away, a decoder exited: its owner reports why); rejects when a read fails, the file is shorter than
 * `end`, or `signal` aborts. The handle stays the caller's.
 */
export async function pumpFile(handle: FileHandle, out: Writable, options: PumpOptions): Promise<void> {
  const { end, signal } = options;
  const free = Array.from({ length: BUFFERS }, () => Buffer.allocUnsafeSlow(BUFFER_BYTES));
  let wake: (() => void) | undefined;
  const wakeUp = () => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  const writable = () => out.destroyed || (free.length > 0 && !out.writableNeedDrain);
  out.on('close', wakeUp);
  out.on('drain', wakeUp);
  signal?.addEventListener('abort', wakeUp);
  try {
    let position = options.start ?? 0;
    for (;;) {
      signal?.throwIfAborted();
      const last = typeof end === 'number' ? end : end();
      if (out.destroyed || (last !== undefined && position >= last)) break;
      if (!writable()) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      const buffer = free.pop()!;
      const { bytesRead } = await handle.read(
        buffer,
        0,
        Math.min(BUFFER_BYTES, (last ?? Infinity) - position),
        position,
      );
      if (bytesRead === 0) {
        free.push(buffer);
        if (typeof end === 'number') throw new Error(`the file ended at byte ${position} of ${end}`);
        await sleep(POLL_MS, undefined, signal ? { signal } : {}).catch(() => signal?.throwIfAborted());
        continue;
      }
      position += bytesRead;
      options.onBytes?.(bytesRead);
      // The callback runs once the writable no longer needs the bytes (or was destroyed): reuse the buffer then.
      out.write(buffer.subarray(0, bytesRead), () => {
        free.push(buffer);
        wakeUp();
      });
    }
    if (out.destroyed) return;
    // Done once the writable has taken every byte (or was destroyed meanwhile).
    await new Promise<void>((resolve) => {
      out.once('close', resolve);
      out.end(resolve);
    });
  } finally {
    out.off('close', wakeUp);
    out.off('drain', wakeUp);
    signal?.removeEventListener('abort', wakeUp);
  }
}

// Read a file that another part of this process is still appending to, from its start, until the writer says how long it is.
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

const CHUNK = 1024 * 1024;
/** How long to wait for more bytes once the reader has caught up with the writer. */
const POLL_MS = 10;

/**
 * The bytes of `file` (a path, or a handle opened already, which it then owns) from offset 0. When the reader
 * catches up it waits; it ends once `finalLength()` returns a length and that many bytes were read. `signal`
 * stops it with its reason (the download failed).
 */
export function readGrowingFile(file: string | FileHandle, finalLength: () => number | undefined, signal: AbortSignal): Readable {
  async function* bytes(): AsyncGenerator<Buffer> {
    const handle = typeof file === 'string' ? await open(file, 'r') : file;
    try {
      let position = 0;
      for (;;) {
        signal.throwIfAborted();
        const buffer = Buffer.allocUnsafe(CHUNK);
        const { bytesRead } = await handle.read(buffer, 0, CHUNK, position);
        if (bytesRead > 0) {
          position += bytesRead;
          yield buffer.subarray(0, bytesRead);
          continue;
        }
        const end = finalLength();
        if (end !== undefined && position >= end) return;
        await sleep(POLL_MS, undefined, { signal });
      }
    } finally {
      await handle.close();
    }
  }
  return Readable.from(bytes(), { objectMode: false });
}

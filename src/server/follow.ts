// A pull's compressed bytes as they arrive: read the growing partial file from its start until the pull ends.
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Pull } from './pulls.js';

const CHUNK = 1024 * 1024;

/**
 * What a request for `image.xz` can get from a running pull: a stream of the `.xz` as it arrives; `done` when the
 * pull ended well before the bytes could be followed (serve the stored file); `uncompressed` when upstream has no
 * `.xz`. A failed pull rejects with its error; a stream whose pull fails later is destroyed with it. On the fast
 * path the stream ends once the whole `.xz` matched its digest, without waiting for the server's own decoding.
 */
export async function followPull(pull: Pull, partialPath: string, signal: AbortSignal): Promise<Readable | 'done' | 'uncompressed'> {
  // Wait for the download to start: until then the partial file may be a previous attempt's.
  while (!pull.state.outcome && pull.state.bytes === 0) await pull.changed(1000, signal);
  if (signal.aborted) throw signal.reason;
  const outcome = pull.state.outcome;
  if (outcome) {
    if (!outcome.ok) throw outcome.error;
    return 'done';
  }
  if (!pull.state.location?.endsWith('.xz')) return 'uncompressed';
  const handle = await open(partialPath, 'r').catch(() => undefined);
  if (!handle) {
    // Renamed into place already: the pull is finishing.
    const end = await pull.done;
    if (!end.ok) throw end.error;
    return 'done';
  }
  async function* bytes(): AsyncGenerator<Buffer> {
    let position = 0;
    let final = false;
    try {
      for (;;) {
        const buffer = Buffer.allocUnsafe(CHUNK);
        const { bytesRead } = await handle!.read(buffer, 0, CHUNK, position);
        if (bytesRead > 0) {
          position += bytesRead;
          yield buffer.subarray(0, bytesRead);
          continue;
        }
        if (final) return;
        const end = pull.state.outcome;
        if (end && !end.ok) throw end.error;
        // Ended well, or every byte is on disk and matched its digest: read once more to the end; the file is whole then.
        if (end || pull.state.compressedVerified) {
          final = true;
          continue;
        }
        await pull.changed(250, signal);
        if (signal.aborted) throw signal.reason;
      }
    } finally {
      await handle!.close();
    }
  }
  return Readable.from(bytes(), { objectMode: false });
}

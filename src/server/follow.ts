// A pull's compressed bytes as they arrive: read the growing partial file from its start until the pull ends.
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { readGrowingFile } from '../fetch/growing-file.js';
import type { Pull } from './pulls.js';

/**
 * What a request for `image.xz` (or `image.zst`: `suffix`) can get from a running pull: a stream of the file as it
 * arrives; `done` when the pull ended well before the bytes could be followed (serve the stored file); `elsewhere`
 * when the pull downloads another file (upstream has no `.xz`, or the pull takes its `.zst`). A failed pull rejects
 * with its error; a stream whose pull fails later is destroyed with it. On the fast path the stream ends once the
 * whole file matched its digest, without waiting for the server's own decoding.
 */
export async function followPull(pull: Pull, partialPath: string, suffix: '.xz' | '.zst', signal: AbortSignal): Promise<Readable | 'done' | 'elsewhere'> {
  // Wait for the download to start: until then the partial file may be a previous attempt's.
  while (!pull.state.outcome && pull.state.bytes === 0) await pull.changed(1000, signal);
  if (signal.aborted) throw signal.reason;
  const outcome = pull.state.outcome;
  if (outcome) {
    if (!outcome.ok) throw outcome.error;
    return 'done';
  }
  if (!pull.state.location?.endsWith(suffix)) return 'elsewhere';
  // Opened now: the file keeps its bytes for this reader even once it is renamed into the store.
  const handle = await open(partialPath, 'r').catch(() => undefined);
  if (!handle) {
    // Renamed into place already: the pull is finishing.
    const end = await pull.done;
    if (!end.ok) throw end.error;
    return 'done';
  }
  const failed = new AbortController();
  void pull.done.then((end) => {
    if (!end.ok) failed.abort(end.error);
  });
  // Whole once the pull ended well, or once every byte is on disk and matched its digest.
  const finalLength = () => (pull.state.outcome?.ok || pull.state.compressedVerified ? pull.state.bytes : undefined);
  return readGrowingFile(handle, finalLength, AbortSignal.any([failed.signal, signal]));
}

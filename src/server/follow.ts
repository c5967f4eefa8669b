// A pull's compressed bytes as they arrive: the growing partial file, opened, and when it ends.
import { open, type FileHandle } from 'node:fs/promises';
import type { Pull } from './pulls.js';

/** The partial file opened, how long it will be once known, and a signal that aborts with the pull's error. */
export interface Followed {
  handle: FileHandle;
  end: () => number | undefined;
  signal: AbortSignal;
}

/**
 * What a request for `image.xz` (or `image.zst`: `suffix`) can get from a running pull: the file as it arrives
 * (see Followed); `done` when the pull ended well before the bytes could be followed (serve the stored file); `elsewhere`
 * when the pull downloads another file (upstream has no `.xz`, or the pull takes its `.zst`). A failed pull rejects
 * with its error; `signal` aborts with it when the pull fails later. On the fast path the length is known once the
 * whole file matched its digest, without waiting for the server's own decoding. The caller closes the handle.
 */
export async function followPull(
  pull: Pull,
  partialPath: string,
  suffix: '.xz' | '.zst',
  signal: AbortSignal,
): Promise<Followed | 'done' | 'elsewhere'> {
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
  return { handle, end: finalLength, signal: AbortSignal.any([failed.signal, signal]) };
}

// Early writeback: flush a file being written every second, so the fsync before publishing finds little left to do.
import type { FileHandle } from 'node:fs/promises';

const INTERVAL_MS = 1000;

/** Starts flushing `handle` in the background (one flush at a time); the returned function stops it. */
export function startWriteback(handle: FileHandle): () => Promise<void> {
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = handle.datasync().then(
      () => {
        running = undefined;
      },
      () => {
        running = undefined;
      },
    );
  }, INTERVAL_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

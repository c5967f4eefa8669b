// Where each hashing worker's module is: fetch/workers/ as built into dist/ (the CLI bundle swaps this file for its own).

export type WorkerName = 'hash-batches' | 'hash-behind' | 'fifo-sink';

/**
 * The built worker beside this module. Run from the TypeScript sources (vitest), a worker thread is plain Node and
 * cannot load .ts: it takes the built one in dist/ (`npm test` builds first).
 */
export function workerUrl(name: WorkerName): URL {
  const here = import.meta.url;
  const base = here.endsWith('.ts') ? here.replace(/\/src\/fetch\/[^/]+$/, '/dist/fetch/worker-url.js') : here;
  return new URL(`./workers/${name}.js`, base);
}

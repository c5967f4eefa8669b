// Warming: the cache host pulls the newest version of every served template it lacks, one at a time, after each reload.
import { entryName } from '../store/layout.js';
import type { Catalogue } from './catalogue.js';
import type { Pulls } from './pulls.js';

/**
 * Pulls, one after another, the newest version of each template of `catalogue` that the store does not hold (catalogues
 * of clients that need a file's digest before it is here, simplestreams and virt-builder, then list them). A running
 * warm-up is not started twice; a failed pull is logged and the next one goes on.
 */
export function createWarmer(options: {
  pulls: Pulls;
  signal: AbortSignal;
  log: (line: Record<string, unknown>) => void;
}): (catalogue: Catalogue) => void {
  let running = false;
  return (catalogue) => {
    if (running || options.signal.aborted) return;
    running = true;
    void (async () => {
      for (const name of catalogue.names()) {
        const newest = new Map<string, NonNullable<ReturnType<Catalogue['versions']>>[number]>();
        for (const version of catalogue.versions(name) ?? []) {
          const known = newest.get(version.key.template);
          if (!known || version.timestamp >= known.timestamp) newest.set(version.key.template, version);
        }
        for (const version of newest.values()) {
          if (options.signal.aborted) return;
          if (version.stored) continue;
          const outcome = await options.pulls.start(version.key).done;
          options.log({
            kind: 'warm',
            ref: entryName(version.key),
            ...(outcome.ok ? { result: 'stored' } : { error: outcome.error.code }),
          });
        }
      }
    })().finally(() => {
      running = false;
    });
  };
}

// The serve side of `templates status`: the same scrape every --scrape-interval, its latest report for /metrics and the API.
import { EventEmitter } from 'node:events';
import { asTemplatesError } from '../errors.js';
import type { StatusReport } from '../status/model.js';
import type { ScrapeOptions } from '../status/scrape.js';

export interface StatusWatch {
  /** The last report, or undefined before the first scrape ended (or with scraping off). */
  latest(): StatusReport | undefined;
  /** The last report, waiting for the first scrape when none ended yet; undefined with scraping off. */
  report(): Promise<StatusReport | undefined>;
  /** Emits `report` after each scrape (the dashboard's event stream redraws its grid at once). */
  readonly events: EventEmitter<{ report: [StatusReport] }>;
  stop(): void;
}

export interface StatusWatchOptions {
  /** 0: no scraping. */
  intervalMs: number;
  scrape: (options: ScrapeOptions) => Promise<StatusReport>;
  options: ScrapeOptions;
  log: (line: Record<string, unknown>) => void;
}

export function watchStatus({ intervalMs, scrape, options, log }: StatusWatchOptions): StatusWatch {
  let latest: StatusReport | undefined;
  const events = new EventEmitter<{ report: [StatusReport] }>();
  events.setMaxListeners(0);
  if (intervalMs <= 0) return { latest: () => undefined, report: async () => undefined, events, stop() {} };
  let running: Promise<void> | undefined;
  const run = () =>
    (running ??= scrape(options)
      .then((report) => {
        latest = report;
        const rows = report.servers.flatMap((server) => server.repositories);
        log({
          kind: 'status',
          healthy: report.healthy,
          servers: report.servers.length,
          unhealthy: rows.filter((r) => !r.healthy).map((r) => `${r.name}@${r.server}`),
        });
        events.emit('report', report);
      })
      .catch((error: unknown) =>
        log({ kind: 'status', error: asTemplatesError(error).code, message: asTemplatesError(error).toLine() }),
      )
      .finally(() => (running = undefined)));
  const first = run();
  const timer = setInterval(() => void run(), intervalMs);
  timer.unref();
  return {
    latest: () => latest,
    events,
    async report() {
      if (!latest) await first;
      return latest;
    },
    stop: () => clearInterval(timer),
  };
}

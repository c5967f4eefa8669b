// What the server does, observed: metrics, log lines and the dashboard's activity from pulls and job events.
import { asTemplatesError } from '../errors.js';
import { JOB_STATES, stateName, type Job } from '../jobs/model.js';
import type { JobService } from '../jobs/service.js';
import { isValidName, type VersionKey } from '../repository/reference.js';
import type { RepositorySet } from '../repository/set.js';
import { parseEntryName } from '../store/layout.js';
import { sourceKind, type Activity, type SourceKind, type Transfer } from './activity.js';
import type { InventoryCache } from './inventory-cache.js';
import type { Metrics } from './metrics.js';
import type { Pull, PullEvents } from './pulls.js';

export interface Observers {
  metrics: Metrics;
  log: (line: Record<string, unknown>) => void;
  inventory: InventoryCache;
  activity: Activity;
  repositories: () => RepositorySet;
}

const sourceOf = (repositories: RepositorySet, key: VersionKey) => repositories.version(key)?.source;

/** How and when a stored entry was delivered, from its record: a job's progress does not say which server it read. */
async function storedOrigin(o: Observers, key: VersionKey): Promise<{ source?: SourceKind; fetchedAt?: number }> {
  const entry = (await o.inventory.get()).entries.find(
    (e) => e.key.repository === key.repository && e.key.template === key.template && e.key.version === key.version,
  );
  const source = sourceOf(o.repositories(), key);
  const kind =
    source?.type !== 'http'
      ? sourceKind(source, undefined)
      : entry?.server
        ? entry.mirror
          ? 'mirror'
          : 'primary'
        : undefined;
  return { ...(kind ? { source: kind } : {}), ...(entry ? { fetchedAt: Date.parse(entry.fetchedAt) } : {}) };
}

/** Pull events: the in-flight gauge, results, upstream bytes, one log line at each end, and the activity list. */
export function pullEvents(o: Observers): PullEvents {
  const transfers = new WeakMap<Pull, Transfer>();
  return {
    onStart: (pull) => {
      o.metrics.pullsInFlight.inc();
      transfers.set(pull, o.activity.start('pull', pull.ref));
      o.log({ kind: 'pull', ref: pull.ref, event: 'start' });
    },
    onBytes: (pull, delta) => {
      o.metrics.upstreamBytes.inc(delta);
      const transfer = transfers.get(pull);
      const { bytes, total, location } = pull.state;
      // The server is classified when the location changes (a mirror taking over), not for every chunk.
      const source =
        transfer && location !== transfer.location
          ? sourceKind(sourceOf(o.repositories(), pull.key), location)
          : undefined;
      if (transfer) o.activity.progress(transfer, { bytes, total, location, source });
    },
    onEnd: (pull, outcome, seconds) => {
      o.metrics.pullsInFlight.dec();
      o.metrics.pulls.inc({
        result: outcome.ok ? outcome.result.status : 'failed',
        code: outcome.ok ? 'OK' : outcome.error.code,
      });
      void o.inventory.refreshEntry(pull.key).catch(() => undefined);
      const transfer = transfers.get(pull);
      if (transfer)
        o.activity.end(
          transfer,
          outcome.ok
            ? { result: outcome.result.status }
            : { result: 'failed', code: outcome.error.code, message: outcome.error.toLine() },
        );
      o.log({
        kind: 'pull',
        ref: pull.ref,
        event: 'end',
        ok: outcome.ok,
        ...(outcome.ok
          ? { status: outcome.result.status }
          : { error: outcome.error.code, message: outcome.error.toLine() }),
        bytes: pull.state.bytes,
        source: pull.state.location ?? null,
        seconds,
      });
    },
  };
}

const keysOf = (job: Job) =>
  job.refs.flatMap((ref) => {
    const key = parseEntryName(ref.version, isValidName);
    return key ? [key] : [];
  });

/** Job metrics, log lines and activity from the service's events: queue wait, fetch duration, one line per state change. */
export function observeJobs(service: JobService, o: Observers): void {
  const queuedAt = new Map<number, number>();
  const transfers = new Map<number, Transfer>();
  service.events.on('job', (job, kind) => {
    const transfer = transfers.get(job.id);
    if (kind === 'progress') {
      if (transfer)
        o.activity.progress(transfer, {
          bytes: job.progress.bytes,
          ...(job.progress.total !== null ? { total: job.progress.total } : {}),
        });
      return;
    }
    o.log({
      kind: 'job',
      id: job.id,
      owner: job.owner,
      state: stateName(job.state),
      ...(job.stateReason ? { reason: job.stateReason } : {}),
    });
    if (job.state === JOB_STATES.wait) queuedAt.set(job.id, Date.now());
    if (job.state === JOB_STATES.fetching) {
      const since = queuedAt.get(job.id) ?? job.timeSubmitted;
      o.metrics.jobQueueWait.observe(Math.max(0, Date.now() - since) / 1000);
      queuedAt.delete(job.id);
      if (!transfer)
        transfers.set(job.id, o.activity.start('job', job.refs.map((ref) => ref.version).join(' '), job.id));
    }
    if ((job.state === JOB_STATES.done || job.state === JOB_STATES.failed) && job.timeStarted !== null) {
      o.metrics.jobFetchDuration.observe(
        { state: stateName(job.state) },
        Math.max(0, (job.timeDone ?? job.timeStarted) - job.timeStarted) / 1000,
      );
    }
    if (job.state !== JOB_STATES.wait && job.state !== JOB_STATES.fetching) {
      const keys = keysOf(job);
      void Promise.all(keys.map((key) => o.inventory.refreshEntry(key).catch(() => undefined)))
        .then(async () => {
          if (!transfer) return;
          transfers.delete(job.id);
          const origins = await Promise.all(
            keys.map((key) => storedOrigin(o, key).catch(() => ({}) as { source?: SourceKind; fetchedAt?: number })),
          );
          const source = origins.find((origin) => origin.source)?.source;
          if (source) o.activity.progress(transfer, { source });
          // Done without storing anything new (every template was stored already): cached, as a pull says.
          const fresh = origins.some(
            (origin) =>
              origin.fetchedAt !== undefined && job.timeStarted !== null && origin.fetchedAt >= job.timeStarted - 1000,
          );
          o.activity.end(
            transfer,
            job.state === JOB_STATES.done
              ? { result: fresh ? 'downloaded' : 'cached' }
              : {
                  result: 'failed',
                  code: job.stateCode ?? (job.state === JOB_STATES.removed ? 'JOB_REMOVED' : 'FAILED'),
                  message: job.stateReason ?? stateName(job.state),
                },
          );
        })
        .catch((error: unknown) =>
          o.log({ kind: 'jobs', error: asTemplatesError(error).code, message: asTemplatesError(error).toLine() }),
        );
    }
  });
}

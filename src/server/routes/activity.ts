// /api/1/transfers, /api/1/prune and /api/1/events: what the dashboard shows beside the usage, jobs and status APIs.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Job } from '../../jobs/model.js';
import { planPrune } from '../../manage/prune-plan.js';
import { isValidName } from '../../repository/reference.js';
import type { StoredSummary } from '../../store/inventory.js';
import { parseEntryName } from '../../store/layout.js';
import type { Transfer } from '../activity.js';
import type { ServerDeps } from '../deps.js';
import { openEventStream } from '../sse.js';
import { API, versionHref } from '../usage.js';
import { jobResource } from './jobs.js';

/** A transfer's progress is sent at most this often per stream (starts and ends at once). */
const PROGRESS_EVERY_MS = 250;

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

function transferJson(transfer: Transfer): Record<string, unknown> {
  const key = transfer.kind === 'pull' ? parseEntryName(transfer.ref, isValidName) : undefined;
  return {
    id: transfer.id,
    kind: transfer.kind,
    ref: transfer.ref,
    job: transfer.job ?? null,
    started_at: iso(transfer.startedAt),
    ended_at: iso(transfer.endedAt),
    seconds: ((transfer.endedAt ?? Date.now()) - transfer.startedAt) / 1000,
    bytes: transfer.bytes,
    total: transfer.total ?? null,
    location: transfer.location ?? null,
    source: transfer.source ?? null,
    result: transfer.result ?? null,
    code: transfer.code ?? null,
    message: transfer.message ?? null,
    _links:
      transfer.job !== undefined
        ? { job: { href: `${API}/jobs/${transfer.job}` } }
        : key
          ? { version: { href: versionHref(key) } }
          : {},
  };
}

function entryJson(entry: StoredSummary, reason: string): Record<string, unknown> {
  return {
    ref: entry.ref,
    size: entry.size,
    disk_size: entry.diskSize,
    last_used: entry.lastUsed,
    reason,
    _links: { version: { href: versionHref(entry.key) } },
  };
}

export function activityRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.get(`${API}/transfers`, async (_request, reply) =>
    reply.header('cache-control', 'no-store').send({
      _links: { self: { href: `${API}/transfers` }, events: { href: `${API}/events` } },
      in_flight: deps.activity.inFlight().map(transferJson),
      recent: deps.activity.recent().map(transferJson),
    }),
  );

  app.get(`${API}/prune`, async (_request, reply) => {
    const { olderThanMs, keep, maxBytes } = deps.prunePolicy;
    const plan = planPrune((await deps.inventory.get()).entries, deps.prunePolicy, deps.context.now(), {
      repositories: deps.repositories.current(),
    });
    return reply.header('cache-control', 'no-store').send({
      _links: { self: { href: `${API}/prune` } },
      policy: {
        older_than_seconds: olderThanMs === undefined ? null : olderThanMs / 1000,
        keep: keep ?? null,
        max_bytes: maxBytes ?? null,
      },
      next: plan.next.map(({ entry, reason }) => entryJson(entry, reason)),
      kept: plan.kept.map(({ entry, reason }) => entryJson(entry, reason)),
      freed: plan.freed,
    });
  });

  // One stream for the page: `transfer` (a start, its progress, its end), `job` (a state change or progress) and
  // `status` (a scrape ended: read /api/1/status again).
  app.get(`${API}/events`, async (request: FastifyRequest, reply) => {
    const pending = new Map<number, Transfer>();
    const onTransfer = (transfer: Transfer) => {
      if (transfer.bytes > 0 && transfer.result === undefined) return void pending.set(transfer.id, transfer);
      pending.delete(transfer.id);
      stream.send('transfer', transferJson(transfer));
    };
    const onJob = (job: Job) => stream.send('job', jobResource(deps, request, job));
    const onStatus = () => stream.send('status', { scraped: `${API}/status` });
    const flush = setInterval(() => {
      for (const transfer of pending.values()) stream.send('transfer', transferJson(transfer));
      pending.clear();
    }, PROGRESS_EVERY_MS);
    flush.unref();
    const stream = openEventStream(request, reply, deps.jobs.closing, () => {
      clearInterval(flush);
      deps.activity.events.off('change', onTransfer);
      deps.jobs.service.events.off('job', onJob);
      deps.status.events.off('report', onStatus);
    });
    stream.send('hello', { transfers: `${API}/transfers`, jobs: `${API}/jobs` });
    deps.activity.events.on('change', onTransfer);
    deps.jobs.service.events.on('job', onJob);
    deps.status.events.on('report', onStatus);
    return reply;
  });
}

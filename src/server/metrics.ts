// The server's Prometheus metrics (prom-client), in a registry of its own per server: store, pulls, requests, auth.
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { StoreSnapshot } from './inventory-cache.js';
import type { StatusReport } from '../status/model.js';
import { STATUS_GAUGES } from '../status/prometheus.js';

export interface Metrics {
  registry: Registry;
  pulls: Counter<'result' | 'code'>;
  upstreamBytes: Counter;
  servedBytes: Counter<'file'>;
  /** casync chunks (docs/delta.md): `served` (their files), `reused` (cut from stored images), `pulled` (from upstream). */
  chunkBytes: Counter<'kind'>;
  /** What each client format served (docs/catalogues.md): requests answered 2xx, and the bytes of their files. */
  formatRequests: Counter<'format'>;
  formatBytes: Counter<'format'>;
  pullsInFlight: Gauge;
  requests: Counter<'route' | 'method' | 'status'>;
  duration: Histogram<'route' | 'method'>;
  authFailures: Counter<'reason'>;
  /** Seconds a job waited in the queue before it began fetching. */
  jobQueueWait: Histogram;
  /** Seconds from a job's start of fetching to done or failed, by the state it ended in. */
  jobFetchDuration: Histogram<'state'>;
}

/** prom-client's default gauges named like counters: promtool check metrics fails on them. */
const LINT_FAILURES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** `jobCounts`: how many jobs are in each state, by state name (read at each scrape). */
export async function createMetrics(
  snapshot: () => Promise<StoreSnapshot>,
  jobCounts: () => Record<string, number>,
  status: () => StatusReport | undefined = () => undefined,
): Promise<Metrics> {
  const client = await import('prom-client');
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  for (const name of LINT_FAILURES) registry.removeSingleMetric(name);
  const registers = [registry];
  const storeGauge = (name: string, help: string, read: (s: StoreSnapshot) => number) =>
    new client.Gauge({
      name,
      help,
      registers,
      async collect() {
        this.set(read(await snapshot()));
      },
    });
  storeGauge(
    'templates_store_size_bytes',
    'Apparent size of every stored entry (image and kept .xz or .zst).',
    (s) => s.size,
  );
  storeGauge('templates_store_disk_size_bytes', 'Bytes the stored entries occupy on disk.', (s) => s.diskSize);
  storeGauge('templates_store_entries', 'Entries in the store.', (s) => s.entries.length);
  storeGauge('templates_store_free_bytes', "Free bytes on the store's filesystem.", (s) => s.free);
  new client.Gauge({
    name: 'templates_jobs',
    help: 'On-demand jobs by state.',
    labelNames: ['state'],
    registers,
    collect() {
      for (const [state, count] of Object.entries(jobCounts())) this.set({ state }, count);
    },
  });
  // The status scrape's gauges, as `templates status --prometheus` prints them, from the latest report.
  for (const gauge of STATUS_GAUGES) {
    new client.Gauge({
      name: gauge.name,
      help: gauge.help,
      labelNames: ['repository', 'server', 'role'],
      registers,
      collect() {
        this.reset();
        for (const row of status()?.servers.flatMap((server) => server.repositories) ?? []) {
          const value = gauge.value(row);
          if (value !== null && value !== undefined && Number.isFinite(value))
            this.set({ repository: row.name, server: row.server, role: row.role }, value);
        }
      },
    });
  }
  const jobBuckets = [1, 5, 15, 60, 300, 900, 3600, 4 * 3600];
  return {
    registry,
    jobQueueWait: new client.Histogram({
      name: 'templates_job_queue_wait_seconds',
      help: 'Time a job waited before it began fetching.',
      buckets: jobBuckets,
      registers,
    }),
    jobFetchDuration: new client.Histogram({
      name: 'templates_job_fetch_duration_seconds',
      help: 'Time a job spent fetching, by the state it ended in.',
      labelNames: ['state'],
      buckets: jobBuckets,
      registers,
    }),
    pulls: new client.Counter({
      name: 'templates_pulls_total',
      help: 'Upstream fetches started by the server, by result and error code.',
      labelNames: ['result', 'code'],
      registers,
    }),
    upstreamBytes: new client.Counter({
      name: 'templates_upstream_bytes_total',
      help: 'Bytes read from upstream sources by pulls.',
      registers,
    }),
    servedBytes: new client.Counter({
      name: 'templates_served_bytes_total',
      help: 'Bytes of template files sent to neighbours.',
      labelNames: ['file'],
      registers,
    }),
    chunkBytes: new client.Counter({
      name: 'templates_chunk_bytes_total',
      help: 'Chunk bytes: served (chunk files sent), reused (cut from stored images), pulled (chunk files from upstream).',
      labelNames: ['kind'],
      registers,
    }),
    formatRequests: new client.Counter({
      name: 'templates_format_requests_total',
      help: 'Successful requests by client format: lago, casync, simplestreams (catalogues and files).',
      labelNames: ['format'],
      registers,
    }),
    formatBytes: new client.Counter({
      name: 'templates_format_bytes_total',
      help: 'Bytes of image files sent by client format: lago, casync, simplestreams.',
      labelNames: ['format'],
      registers,
    }),
    pullsInFlight: new client.Gauge({
      name: 'templates_pulls_in_flight',
      help: 'Upstream fetches running now.',
      registers,
    }),
    requests: new client.Counter({
      name: 'templates_http_requests_total',
      help: 'HTTP requests by route, method and status.',
      labelNames: ['route', 'method', 'status'],
      registers,
    }),
    duration: new client.Histogram({
      name: 'templates_http_request_duration_seconds',
      help: 'Time to answer an HTTP request (to the last byte).',
      labelNames: ['route', 'method'],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60, 300],
      registers,
    }),
    authFailures: new client.Counter({
      name: 'templates_auth_failures_total',
      help: 'Refused credentials and tokens, by reason.',
      labelNames: ['reason'],
      registers,
    }),
  };
}

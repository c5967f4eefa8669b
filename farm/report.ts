// The farm's report: what every fetch ended in, what verify found, jobs, upstream downloads, latency, the cache host's peaks (pure).
import type { FetchRecord } from './neighbours.js';

export interface FarmInputs {
  minutes: number;
  neighbours: number;
  records: FetchRecord[];
  /** Entries `templates verify` checked in every store, and those it found corrupt (ref and store). */
  checked: number;
  corrupt: string[];
  jobs: { acknowledged: number; lost: number[]; states: Record<string, number>; counts: Record<string, number> };
  /** Whole-image downloads from upstream per version (tpl/version). */
  upstream: Map<string, number>;
  restarts: number;
  peaks: { rssKiB: number; files: number; storeBytes: number };
  links: Record<string, { down: number; up: number }>;
  schedule: string[];
  notes: string[];
}

export interface FarmReport {
  minutes: number;
  neighbours: number;
  fetches: number;
  verified: number;
  typed_errors: number;
  untyped_errors: number;
  /** Commands still running 90 s after the farm stopped (killed then). */
  hung: number;
  killed: number;
  errors_by_code: Record<string, number>;
  delta_fetches: number;
  stored_entries_checked: number;
  corrupt: number;
  corrupt_entries: string[];
  jobs_acknowledged: number;
  jobs_lost: number;
  job_states: Record<string, number>;
  job_traffic: Record<string, number>;
  upstream_downloads: Record<string, number>;
  /** Versions downloaded more often than 1 + restarts. */
  upstream_over: string[];
  restarts: number;
  cache_hit_ms: { count: number; p50: number; p99: number };
  cache_host_peak_rss_mib: number;
  cache_host_peak_open_files: number;
  /** The cache host's store filesystem at its fullest outside the disk-full fault (0 when not on its own filesystem). */
  cache_host_peak_store_mib: number;
  link_bytes: Record<string, { down: number; up: number }>;
  schedule: string[];
  notes: string[];
}

/** The q-quantile (0..1) of `values`, nearest rank. */
export function quantile(values: number[], q: number): number {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function buildReport(input: FarmInputs): FarmReport {
  const { records } = input;
  const errors = records.filter((r) => r.outcome === 'error');
  const byCode: Record<string, number> = {};
  for (const r of errors) byCode[r.code ?? 'UNTYPED'] = (byCode[r.code ?? 'UNTYPED'] ?? 0) + 1;
  const hits = records.filter((r) => r.outcome === 'verified' && r.cacheHit && r.via === 'repo').map((r) => r.ms);
  const upstream = Object.fromEntries([...input.upstream.entries()].sort());
  return {
    minutes: input.minutes,
    neighbours: input.neighbours,
    fetches: records.length,
    verified: records.filter((r) => r.outcome === 'verified').length,
    typed_errors: errors.filter((r) => r.code !== 'UNTYPED' && r.code !== 'HUNG').length,
    untyped_errors: errors.filter((r) => r.code === 'UNTYPED').length,
    hung: errors.filter((r) => r.code === 'HUNG').length,
    killed: records.filter((r) => r.outcome === 'killed').length,
    errors_by_code: byCode,
    delta_fetches: records.filter((r) => (r.reusedBytes ?? 0) > 0).length,
    stored_entries_checked: input.checked,
    corrupt: input.corrupt.length,
    corrupt_entries: input.corrupt,
    jobs_acknowledged: input.jobs.acknowledged,
    jobs_lost: input.jobs.lost.length,
    job_states: input.jobs.states,
    job_traffic: input.jobs.counts,
    upstream_downloads: upstream,
    upstream_over: Object.entries(upstream)
      .filter(([, n]) => n > 1 + input.restarts)
      .map(([version]) => version),
    restarts: input.restarts,
    cache_hit_ms: { count: hits.length, p50: Math.round(quantile(hits, 0.5)), p99: Math.round(quantile(hits, 0.99)) },
    cache_host_peak_rss_mib: Math.round(input.peaks.rssKiB / 1024),
    cache_host_peak_open_files: input.peaks.files,
    cache_host_peak_store_mib: Math.round(input.peaks.storeBytes / 1024 / 1024),
    link_bytes: input.links,
    schedule: input.schedule,
    notes: input.notes,
  };
}

/** The farm passes when nothing stored is corrupt, no job was lost, and every fetch ended, saying why when it failed. */
export const passed = (report: FarmReport) =>
  report.corrupt === 0 && report.jobs_lost === 0 && report.untyped_errors === 0 && report.hung === 0;

const MiB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export function formatReport(r: FarmReport): string {
  const codes = Object.entries(r.errors_by_code)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
  const lines = [
    `farm: ${r.minutes} min, ${r.neighbours} neighbours`,
    '',
    'faults:',
    ...r.schedule.map((line) => `  ${line}`),
    '',
    `fetches          ${r.fetches}: ${r.verified} verified, ${r.typed_errors} typed errors${codes ? ` (${codes})` : ''}, ${r.untyped_errors} untyped, ${r.hung} hung, ${r.killed} killed on purpose`,
    `delta fetches    ${r.delta_fetches} (reused bytes from the neighbour's own store)`,
    `stored entries   ${r.stored_entries_checked} verified by templates verify in every store; corrupt: ${r.corrupt}${r.corrupt ? ` (${r.corrupt_entries.join(', ')})` : ''}`,
    `jobs             ${r.jobs_acknowledged} acknowledged, lost: ${r.jobs_lost}; now ${Object.entries(r.job_states)
      .map(([state, n]) => `${state} ${n}`)
      .join(', ')}; ${Object.entries(r.job_traffic)
      .map(([what, n]) => `${what} ${n}`)
      .join(', ')}`,
    `cache host       ${r.restarts} restarts (SIGKILL); peak RSS ${r.cache_host_peak_rss_mib} MiB, peak open files ${r.cache_host_peak_open_files}, store at most ${r.cache_host_peak_store_mib} MiB (outside the disk-full fault)`,
    `cache hits       ${r.cache_hit_ms.count} fetches through the cache host of versions it held: p50 ${r.cache_hit_ms.p50} ms, p99 ${r.cache_hit_ms.p99} ms`,
    `upstream         whole-image downloads per version (≤ 1 + restarts = ${1 + r.restarts}): ${Object.entries(
      r.upstream_downloads,
    )
      .map(([v, n]) => `${v} ${n}`)
      .join(', ')}${r.upstream_over.length ? `; over: ${r.upstream_over.join(', ')}` : ''}`,
    ...Object.entries(r.link_bytes).map(([name, b]) => `link ${name.padEnd(11)} ${MiB(b.down)} down, ${MiB(b.up)} up`),
    ...r.notes.map((note) => `note: ${note}`),
    '',
    passed(r) ? 'farm: passed (no corrupt image, no lost job, every fetch ended, every failure typed)' : 'farm: FAILED',
  ];
  return lines.join('\n');
}

// The status report as Prometheus exposition text (node_exporter's textfile collector), gauges labelled by repository and server.
import type { RepositoryStatus, StatusReport } from './model.js';

/** Every gauge: its name, help and value (undefined: no sample for that series). */
export const STATUS_GAUGES: ReadonlyArray<{
  name: string;
  help: string;
  value: (r: RepositoryStatus) => number | null | undefined;
}> = [
  {
    name: 'templates_repository_up',
    help: 'Whether the server answered with a readable repository JSON (1) or not (0).',
    value: (r) => (r.reachable && r.error === null ? 1 : 0),
  },
  {
    name: 'templates_repository_healthy',
    help: 'Reachable, readable, in sync with the primary and (with --deep) complete.',
    value: (r) => (r.healthy ? 1 : 0),
  },
  {
    name: 'templates_repository_revision',
    help: 'The revision the repository JSON declares.',
    value: (r) => r.revision,
  },
  {
    name: 'templates_repository_revision_timestamp_seconds',
    help: 'When the served revision was published (its published field, else Last-Modified).',
    value: (r) => r.published ?? (r.lastModified ? Date.parse(r.lastModified) / 1000 : null),
  },
  {
    name: 'templates_repository_behind_revisions',
    help: 'How many revisions a mirror is behind the primary (0: in sync or the primary).',
    value: (r) => (r.sync.state === 'in-sync' || r.sync.state === 'primary' ? 0 : r.sync.behindRevisions),
  },
  {
    name: 'templates_repository_latency_seconds',
    help: 'Time to the response headers of the repository JSON.',
    value: (r) => r.latencySeconds,
  },
  {
    name: 'templates_repository_versions',
    help: 'Versions the repository lists.',
    value: (r) => (r.error === null ? r.versions : null),
  },
  {
    name: 'templates_repository_templates',
    help: 'Templates the repository lists.',
    value: (r) => (r.error === null ? r.templates : null),
  },
  {
    name: 'templates_repository_root_size_bytes',
    help: 'Sum of the declared sizes of every version.',
    value: (r) => (r.error === null ? r.rootSizeBytes : null),
  },
  {
    name: 'templates_repository_signature_valid',
    help: 'With a key trusted for the repository: its .minisig verifies (1) or is missing or invalid (0).',
    value: (r) =>
      r.signature && r.signature.state !== 'unchecked' ? (r.signature.state === 'verified' ? 1 : 0) : null,
  },
  {
    name: 'templates_repository_newest_version_timestamp_seconds',
    help: 'Timestamp of the newest version listed.',
    value: (r) => r.newestVersionTimestamp,
  },
];

const escapeLabel = (value: string) => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

/** The exposition text of a report: HELP and TYPE once per gauge, one sample per (repository, server) that has a value. */
export function statusToPrometheus(report: StatusReport): string {
  const rows = report.servers.flatMap((server) => server.repositories);
  const lines: string[] = [];
  for (const gauge of STATUS_GAUGES) {
    lines.push(`# HELP ${gauge.name} ${gauge.help}`, `# TYPE ${gauge.name} gauge`);
    for (const row of rows) {
      const value = gauge.value(row);
      if (value === null || value === undefined || !Number.isFinite(value)) continue;
      lines.push(
        `${gauge.name}{repository="${escapeLabel(row.name)}",server="${escapeLabel(row.server)}",role="${row.role}"} ${value}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

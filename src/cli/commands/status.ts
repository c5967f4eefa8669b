// `templates status [REPO…]`: every repository at its primary and each mirror, as a table, JSON or Prometheus text.
import { existsSync } from 'node:fs';
import type { RepositoryStatus, StatusReport } from '../../status/model.js';
import { statusToPrometheus } from '../../status/prometheus.js';
import { scrapeStatus } from '../../status/scrape.js';
import { formatSize } from '../../util/size.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, seconds, type CommonValues } from '../options.js';
import { setupStore } from '../setup.js';

export const STATUS_HELP = `Usage: templates status [--json] [--prometheus] [--deep] [REPO...]

Reads every configured repository (or each REPO: a name, a file or a URL) at its primary and at each
mirror, in parallel, and reports per repository and server: reachable, HTTP status, latency, revision,
when it was published, templates and versions, their declared size, and for mirrors whether they are in
sync, behind (by how many revisions) or diverged. See docs/mirrors.md.

  --deep             also HEAD each template's newest image and .hash on every server (present, same size)
  --prometheus       Prometheus text for node_exporter's textfile collector
  --timeout SECS     per request (default 10)
  --concurrency N    requests at once (default 8)
${COMMON_HELP}
Exit: 0 when every server is healthy, 12 when any is down, behind or diverged.`;

interface StatusValues extends CommonValues {
  deep?: boolean;
  prometheus?: boolean;
  timeout?: string;
  concurrency?: string;
}

const OPTIONS = {
  ...COMMON_OPTIONS,
  deep: { type: 'boolean' },
  prometheus: { type: 'boolean' },
  timeout: { type: 'string' },
  concurrency: { type: 'string' },
} as const;

/** Exit status of an unhealthy report (docs/errors.md: STATUS_UNHEALTHY). */
export const UNHEALTHY_EXIT = 12;

function age(seconds: number | null, now: number): string {
  if (seconds === null) return '-';
  const s = Math.max(0, Math.round(now / 1000 - seconds));
  return s < 120
    ? `${s}s`
    : s < 7200
      ? `${Math.round(s / 60)}m`
      : s < 172_800
        ? `${Math.round(s / 3600)}h`
        : `${Math.round(s / 86_400)}d`;
}

function state(row: RepositoryStatus): string {
  if (!row.reachable) return 'down';
  if (row.error) return `error ${row.error.code}`;
  switch (row.sync.state) {
    case 'primary':
      return 'up';
    case 'in-sync':
      return 'in sync';
    case 'behind':
      return row.sync.behindRevisions === null ? 'behind' : `behind ${row.sync.behindRevisions}`;
    default:
      return row.sync.state;
  }
}

/** The report as an aligned table, then one line per problem. */
export function statusTable(report: StatusReport, now: number): string {
  const rows = report.servers
    .flatMap((server) => server.repositories)
    .sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : a.role === 'primary' ? -1 : b.role === 'primary' ? 1 : 0,
    );
  const table = [
    ['REPOSITORY', 'SERVER', 'ROLE', 'STATE', 'REVISION', 'PUBLISHED', 'LATENCY', 'VERSIONS', 'SIZE', 'OK'],
  ];
  for (const r of rows) {
    table.push([
      r.name,
      r.server,
      r.role,
      state(r),
      r.revision !== null ? `r${r.revision}` : r.digest ? r.digest.slice(7, 19) : '-',
      r.published !== null
        ? `${age(r.published, now)} ago`
        : r.lastModified
          ? `${age(Date.parse(r.lastModified) / 1000, now)} ago`
          : '-',
      r.latencySeconds !== null ? `${Math.round(r.latencySeconds * 1000)} ms` : '-',
      r.error ? '-' : String(r.versions),
      r.error ? '-' : formatSize(r.rootSizeBytes),
      r.healthy ? 'yes' : 'NO',
    ]);
  }
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  const lines = table.map((row) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
  for (const r of rows) {
    if (r.error) lines.push(`${r.name} @ ${r.server}: ${r.error.message}`);
    if (r.signature?.state === 'missing' || r.signature?.state === 'invalid')
      lines.push(
        `${r.name} @ ${r.server}: signature ${r.signature.state}${r.signature.keyId ? ` (key ${r.signature.keyId})` : ''}`,
      );
    for (const check of r.deep ?? []) {
      if (check.ok) continue;
      lines.push(
        `${r.name} @ ${r.server}: ${check.ref} ${check.file} ${check.present ? `is ${check.size} bytes, the primary's ${check.primarySize}` : 'missing'} (${check.url})`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

export async function statusCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<StatusValues>(args, OPTIONS, 'status');
  if (values.help) return printed(io, `${STATUS_HELP}\n`);
  const { settings, context, store } = await setupStore(values, io);
  // A REPO that is a URL or an existing file is scraped as given; other REPOs pick configured repositories by name.
  const given = positionals.filter((p) => /^https?:\/\//i.test(p) || existsSync(p));
  const names = positionals.filter((p) => !given.includes(p));
  const timeout = seconds(values.timeout, '--timeout');
  const concurrency = seconds(values.concurrency, '--concurrency');
  const report = await scrapeStatus({
    locations: given.length ? given : settings.repos.value,
    ...(names.length ? { only: names } : {}),
    deep: Boolean(values.deep),
    ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
    ...(concurrency ? { concurrency: Math.floor(concurrency) } : {}),
    context,
    store,
    signal: io.signal,
  });
  if (values.prometheus) io.stdout.write(statusToPrometheus(report));
  else if (values.json) io.stdout.write(`${JSON.stringify(report)}\n`);
  else io.stdout.write(statusTable(report, context.now()));
  return report.healthy ? 0 : UNHEALTHY_EXIT;
}

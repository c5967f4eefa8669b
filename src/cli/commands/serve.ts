// `templates serve`: this host's store as the template cache of its neighbours, until SIGTERM/SIGINT (docs/serve.md).
import { TemplatesError, asTemplatesError } from '../../errors.js';
import { loadRepositories } from '../../repository/find.js';
import { startServer } from '../../server/serve.js';
import { openStore } from '../../store/store.js';
import { parseDuration } from '../../util/duration.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { configuredPrunePolicy, readConfig, setupStore } from '../setup.js';

export const SERVE_HELP = `Usage: templates serve [options]

Serves the store over HTTP to neighbours: lago-format repositories at /repos/REPO.json whose images
come from this store (fetched from upstream on first request, once however many ask), a usage API
at /api/1/, /metrics for Prometheus, /healthz and /readyz. Prints "listening on http://HOST:PORT"
when ready; logs one JSON line per request and per pull on stderr. SIGTERM/SIGINT: stops accepting,
lets responses and pulls in flight finish within --grace, exits 0. SIGHUP: reads the TLS
certificate and key again.

  --listen HOST:PORT   where to listen (default 127.0.0.1:7480; port 0: any free one)
  --repo PATH|URL      an upstream repository (repeatable); --repos DIR: a directory of them
  --store DIR          the store served (kept .xz beside each new entry)
  --auth HTPASSWD      users from a file made by htpasswd -B; without it everything is open
  --anonymous none|read|write  with --auth: "read" opens /repos/ (a trusted LAN); "write" opens
                       everything, jobs included (owned by "anonymous")
  --token-ttl 1h       lifetime of tokens from /auth_token
  --secret-file FILE   token signing secret, created 0600 when missing (default STORE/.serve/secret)
  --public-url URL     the URL neighbours reach this server at (behind a proxy)
  --tls-cert FILE      serve https with this PEM certificate (chain); SIGHUP reads it again
  --tls-key FILE       its PEM private key (both or neither)
  --warm newest|none   "newest": pull the newest version of every template the store lacks, one at a
                       time, at start and after each reload (lxc and virt-builder list only what is held)
  --grace 30s          time for work in flight at shutdown
  --min-free BYTES     /readyz fails below this much free space (default 1 GiB)
  --workers N          on-demand jobs fetching at once (default 2; docs/jobs.md)
  --max-seconds-to-live DURATION  the longest a job may ask to be kept (default 7d)
  --sweep-interval DURATION       how often expired jobs are removed (default 30s)
  --scrape-interval DURATION      how often every repository's primary and mirrors are checked, as
                       templates status does: gauges on /metrics, JSON at /api/1/status (default 5m; 0: off)
  --scrape-deep        the scrape also HEADs each newest image and .hash on every server
  --config FILE        settings (listen, htpasswd, anonymous, …; see templates config)
  -h, --help           this help`;

type ServeValues = CommonValues & {
  listen?: string;
  auth?: string;
  anonymous?: string;
  'token-ttl'?: string;
  'secret-file'?: string;
  'public-url'?: string;
  'tls-cert'?: string;
  'tls-key'?: string;
  warm?: string;
  grace?: string;
  'min-free'?: string;
  workers?: string;
  'max-seconds-to-live'?: string;
  'sweep-interval'?: string;
  'scrape-interval'?: string;
  'scrape-deep'?: boolean;
};

function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || port > 65535)
    throw new TemplatesError('USAGE', `--listen takes HOST:PORT, not ${JSON.stringify(text)}`, {
      hint: 'e.g. 127.0.0.1:7480, 0.0.0.0:7480, [::1]:0',
    });
  return { host: match[1] ?? (match[2] || '127.0.0.1'), port };
}

function durationSeconds(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined)
    throw new TemplatesError('USAGE', `${flag} takes a duration such as 30s, 10m or 1h, not ${JSON.stringify(text)}`);
  return ms / 1000;
}

export async function serveCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommand<ServeValues>(
    args,
    {
      ...COMMON_OPTIONS,
      listen: { type: 'string' },
      auth: { type: 'string' },
      anonymous: { type: 'string' },
      'token-ttl': { type: 'string' },
      'secret-file': { type: 'string' },
      'public-url': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      warm: { type: 'string' },
      grace: { type: 'string' },
      'min-free': { type: 'string' },
      workers: { type: 'string' },
      'max-seconds-to-live': { type: 'string' },
      'sweep-interval': { type: 'string' },
      'scrape-interval': { type: 'string' },
      'scrape-deep': { type: 'boolean' },
    },
    'serve',
  );
  if (values.help) return printed(io, `${SERVE_HELP}\n`);
  const { settings, file } = await readConfig(values, io);
  const { context, warn } = await setupStore(values, io);
  const anonymous = values.anonymous ?? settings.anonymous.value;
  if (anonymous !== 'none' && anonymous !== 'read' && anonymous !== 'write')
    throw new TemplatesError('USAGE', `--anonymous takes none, read or write, not ${JSON.stringify(anonymous)}`);
  const workers = values.workers !== undefined ? Number(values.workers) : settings.workers.value;
  if (!Number.isInteger(workers) || workers < 1 || workers > 64)
    throw new TemplatesError('USAGE', `--workers takes a number from 1 to 64, not ${JSON.stringify(values.workers)}`);
  const maxTtl =
    durationSeconds(values['max-seconds-to-live'], '--max-seconds-to-live') ?? settings.maxSecondsToLive.value;
  const admins = file?.data.admins ?? [];
  if (!Array.isArray(admins) || !admins.every((a) => typeof a === 'string'))
    throw new TemplatesError('CONFIG_INVALID', `${file!.path}: admins: expected an array of user names`, {
      hint: 'fix the config file',
    });
  const { host, port } = parseListen(values.listen ?? settings.listen.value);
  const htpasswd = values.auth ?? settings.htpasswd.value;
  const minFree = values['min-free'] !== undefined ? Number(values['min-free']) : settings.minFreeBytes.value;
  if (!Number.isFinite(minFree) || minFree < 0)
    throw new TemplatesError('USAGE', `--min-free takes a number of bytes, not ${JSON.stringify(values['min-free'])}`);
  const certFile = values['tls-cert'] ?? settings.tlsCert.value;
  const keyFile = values['tls-key'] ?? settings.tlsKey.value;
  if (Boolean(certFile) !== Boolean(keyFile))
    throw new TemplatesError('USAGE', 'https needs both --tls-cert and --tls-key', {
      hint: 'give the PEM certificate and its private key',
    });
  const warm = values.warm ?? settings.warm.value;
  if (warm !== 'none' && warm !== 'newest')
    throw new TemplatesError('USAGE', `--warm takes newest or none, not ${JSON.stringify(warm)}`);
  // The store serve keeps: the same directory, keeping each new entry's verified .xz for its neighbours.
  const store = await openStore({
    root: settings.store.value,
    lockWaitMs: settings.lockWaitSeconds.value * 1000,
    lockStaleMs: settings.lockStaleSeconds.value * 1000,
    partialMaxAgeMs: settings.partialMaxAgeSeconds.value * 1000,
    keepCompressed: true,
    maxBytes: settings.storeMaxBytes.value,
    minFreeBytes: settings.storeMinFreeBytes.value,
  });
  const log = (line: Record<string, unknown>) =>
    void io.stderr.write(`${JSON.stringify({ time: new Date(context.now()).toISOString(), ...line })}\n`);
  const server = await startServer({
    store,
    context,
    host,
    port,
    log,
    loadRepositories: (signal) =>
      loadRepositories({
        context,
        store,
        signal,
        locations: settings.repos.value,
        onWarning: warn,
        ttlMs: settings.repoTtlSeconds.value * 1000,
      }),
    refreshMs: Math.max(10, settings.repoTtlSeconds.value) * 1000,
    ...(htpasswd ? { htpasswd } : {}),
    anonymous,
    tokenTtlSeconds: durationSeconds(values['token-ttl'], '--token-ttl') ?? settings.tokenTtlSeconds.value,
    ...((values['secret-file'] ?? settings.secretFile.value)
      ? { secretFile: values['secret-file'] ?? settings.secretFile.value }
      : {}),
    ...((values['public-url'] ?? settings.publicUrl.value)
      ? { publicUrl: values['public-url'] ?? settings.publicUrl.value }
      : {}),
    ...(certFile ? { tls: { certFile, keyFile } } : {}),
    warm,
    minFreeBytes: minFree,
    prunePolicy: configuredPrunePolicy(settings),
    workers,
    maxSecondsToLive: Math.floor(maxTtl),
    admins: admins as string[],
    sweepMs: (durationSeconds(values['sweep-interval'], '--sweep-interval') ?? 30) * 1000,
    status: {
      locations: settings.repos.value,
      intervalMs:
        (durationSeconds(values['scrape-interval'], '--scrape-interval') ?? settings.scrapeIntervalSeconds.value) *
        1000,
      deep: Boolean(values['scrape-deep']),
    },
  });
  if (!htpasswd) warn('no --auth: everything this server offers is open to whoever can reach it');
  io.stdout.write(`listening on ${server.url}\n`);
  const graceSeconds = durationSeconds(values.grace, '--grace') ?? settings.graceSeconds.value;
  // A renewed certificate is taken without a restart; a bad pair is logged and the old one kept.
  const reload = () =>
    void server
      .reloadTls()
      .catch((error: unknown) =>
        log({ kind: 'tls', error: asTemplatesError(error).code, message: asTemplatesError(error).toLine() }),
      );
  if (certFile) process.on('SIGHUP', reload);
  await new Promise<void>((resolve) => {
    if (io.signal.aborted) resolve();
    else io.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  process.off('SIGHUP', reload);
  log({ kind: 'shutdown', grace_seconds: graceSeconds, pulls: 'finishing' });
  await server.close(graceSeconds * 1000);
  log({ kind: 'shutdown', done: true });
  return 0;
}

// `templates fetch REF…`: make each template present; print its stored path (or a JSON object) per line.
import { DEFAULT_CONCURRENCY, type FetchOutcome, fetchTemplatesSettled } from '../../fetch/fetch-templates.js';
import { DEFAULT_LOCK_FILE } from '../../lockfile/file.js';
import { readLockFile } from '../lock-file.js';
import { TemplatesError } from '../../errors.js';
import { type CliIo, printed, report } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, optionalValue, parseCommand, type CommonValues } from '../options.js';
import { createRenderer } from '../progress.js';
import { setup } from '../setup.js';

export const FETCH_HELP = `Usage: templates fetch [options] REF...

Fetches each template into the store (unless it is there already) and prints its absolute path,
one per line. REF is repo:name[:version]; without a version the newest by timestamp is fetched;
name[:version] is enough when exactly one repository is configured. REF may also be an OCI artifact
pushed by templates push: oci://HOST[:PORT]/NAME[:TAG] or oci://HOST/NAME@sha256:HEX (docs/oci.md).
With --json each line is {"ref","path","status":"downloaded"|"cached","hash","format","size"}.
Several REFs are fetched at once (--jobs); the lines come out in the order the REFs were given.
Progress goes to stderr (bars on a terminal, plain lines otherwise; --quiet for none).

  --quiet           no progress output
  --jobs N          fetch up to N references at once (default 3); their xz decoders share the cores
  --insecure        oci://: plain HTTP to a registry that is not on loopback
  --creds-file FILE oci://: registry credentials (docker config.json format), read first
  --locked [FILE]   fetch exactly what the lock file pins (default ./templates.lock.json; REFs pick pins):
                    no version resolution; LOCK_MISMATCH (exit 14) when the repository or the store
                    now has another digest for a pinned version, or the version is gone (docs/trust.md)
  --keep-xz         keep the fetched .xz beside the image (what templates push uploads as is;
                    TEMPLATES_KEEP_XZ=1 or the config's keepXz for every fetch)
${COMMON_HELP}`;

export async function fetchCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<
    CommonValues & { quiet?: boolean; insecure?: boolean; 'creds-file'?: string; locked?: string; jobs?: string }
  >(
    optionalValue(args, '--locked', DEFAULT_LOCK_FILE),
    {
      ...COMMON_OPTIONS,
      quiet: { type: 'boolean', short: 'q' },
      insecure: { type: 'boolean' },
      'creds-file': { type: 'string' },
      'keep-xz': { type: 'boolean' },
      locked: { type: 'string' },
      jobs: { type: 'string' },
    },
    'fetch',
  );
  if (values.help) return printed(io, `${FETCH_HELP}\n`);
  if (values.locked !== undefined) return fetchLockedCommand(values.locked, positionals, values, io);
  if (positionals.length === 0)
    throw new TemplatesError('USAGE', 'fetch: no template reference given', { hint: 'usage: templates fetch REF...' });
  const jobs = values.jobs === undefined ? DEFAULT_CONCURRENCY : Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1)
    throw new TemplatesError('USAGE', `--jobs takes a whole number of at least 1, not ${JSON.stringify(values.jobs)}`);
  const renderer = await createRenderer(io.stderr, Boolean(values.quiet), io.stdout);
  const { store, repositories, context, settings } = await setup(
    values,
    io,
    values['creds-file'] ? { TEMPLATES_CREDS_FILE: values['creds-file'] } : {},
  );
  let exitCode = 0;
  try {
    // Started together (at most `jobs` at once), reported in the order given: each line once those before it are out.
    const resolvers: Array<(outcome: FetchOutcome) => void> = [];
    const heard = positionals.map(() => new Promise<FetchOutcome>((resolve) => resolvers.push(resolve)));
    const all = fetchTemplatesSettled(positionals, {
      store,
      repositories,
      context,
      signal: io.signal,
      concurrency: jobs,
      offline: settings.offline.value,
      insecure: Boolean(values.insecure),
      onProgress: (e) => renderer.onProgress(e),
      onOutcome: (outcome, index) => resolvers[index]!(outcome),
    });
    all.catch(() => undefined);
    for (const [index, promise] of heard.entries()) {
      const done = await Promise.race([promise, all.then(() => promise)]);
      if (done.ok) renderer.print(values.json ? `${JSON.stringify(done.result)}\n` : `${done.result.path}\n`, 'stdout');
      else {
        if (io.signal.aborted) throw done.error;
        const code = report(io, done.error, Boolean(values.json), positionals[index], renderer.print);
        if (exitCode === 0) exitCode = code;
      }
    }
    await all;
  } finally {
    renderer.stop();
  }
  return exitCode;
}

/** `fetch --locked FILE [REF…]`: every pin (or those named), stopping at the first that does not match. */
async function fetchLockedCommand(
  file: string,
  only: string[],
  values: CommonValues & { quiet?: boolean; 'creds-file'?: string },
  io: CliIo,
): Promise<number> {
  const lock = await readLockFile(file);
  const { fetchLocked } = await import('../../lockfile/fetch-locked.js');
  const renderer = await createRenderer(io.stderr, Boolean(values.quiet));
  const { store, repositories, context, settings } = await setup(
    values,
    io,
    values['creds-file'] ? { TEMPLATES_CREDS_FILE: values['creds-file'] } : {},
  );
  try {
    const results = await fetchLocked(lock, {
      store,
      repositories,
      context,
      signal: io.signal,
      offline: settings.offline.value,
      only,
      onProgress: (e) => renderer.onProgress(e),
    });
    for (const result of results) io.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `${result.path}\n`);
    return 0;
  } catch (error) {
    if (io.signal.aborted) throw error;
    return report(io, error, Boolean(values.json));
  } finally {
    renderer.stop();
  }
}

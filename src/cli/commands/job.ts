// `templates job`: ask a templates serve to hold templates for a while (create, show, wait, renew, rm, list; docs/jobs.md).
import { configuredCredentials } from '../../config/file.js';
import { TemplatesError } from '../../errors.js';
import { createJobClient, jobFailure, type JobJson } from '../../jobs/client.js';
import { parseDuration } from '../../util/duration.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { parseCommand } from '../options.js';
import { readConfig } from '../setup.js';

export const JOB_HELP = `Usage: templates job <create|show|wait|renew|rm|list> [options] [ARGS]

Asks a cache host (templates serve) to have templates ready for a while: it fetches them, keeps
them until the job expires, then frees the space. docs/jobs.md has the model and a CI example.

  job create [--ttl 1d] [--label L] [--qcow2] [--wait] REF...
                   submit a job; prints its id, or with --wait its result repository URL once done
  job show ID      the job (state, pinned versions, expiry, result repository)
  job wait ID      wait until it is done; prints the result repository URL
  job renew ID [--ttl 1d]  keep a done job longer; fetch a removed or failed one again
  job rm ID        cancel a waiting or fetching job, remove a done one now
  job list [--state S] [--owner U] [--label L] [--page N]

  --server URL     the templates serve (default: $TEMPLATES_SERVER, else the config's "server")
  --timeout DURATION  with --wait and wait: give up after this long (exit 8; the job goes on)
  --json           the job (or the page of jobs) as JSON
  --config FILE    the config file
  -h, --help       this help
The token: $TEMPLATES_TOKEN, else a config "auth" entry with a token for the server's URL.
Exit codes: 0 done; a failed job exits with its failure's code (docs/errors.md).`;

type JobValues = {
  server?: string;
  ttl?: string;
  label?: string;
  qcow2?: boolean;
  wait?: boolean;
  timeout?: string;
  state?: string;
  owner?: string;
  page?: string;
  json?: boolean;
  config?: string;
  help?: boolean;
};

const OPTIONS = {
  server: { type: 'string' },
  ttl: { type: 'string' },
  label: { type: 'string' },
  qcow2: { type: 'boolean' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  state: { type: 'string' },
  owner: { type: 'string' },
  page: { type: 'string' },
  json: { type: 'boolean' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function duration(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0)
    throw new TemplatesError('USAGE', `${flag} takes a duration such as 90s, 2h or 1d, not ${JSON.stringify(text)}`);
  return ms;
}

function oneId(positionals: string[], sub: string): number {
  if (positionals.length !== 1 || !/^[1-9]\d*$/.test(positionals[0]!))
    throw new TemplatesError('USAGE', `job ${sub}: give one job id`, { hint: `usage: templates job ${sub} ID` });
  return Number(positionals[0]);
}

function describe(job: JobJson): string {
  const lines = [
    `job ${job.id}: ${job.state_name}${job.state_reason ? ` (${job.state_reason})` : ''}`,
    `owner:     ${job.owner}${job.label ? `, label ${job.label}` : ''}`,
    ...job.refs.map((ref) => `ref:       ${ref.version} ${ref.digest ?? 'no digest'} ${ref.state_name}`),
    `submitted: ${job.time_submitted}`,
    ...(job.time_to_expire ? [`expires:   ${job.time_to_expire}`] : []),
    ...(job.time_removed ? [`removed:   ${job.time_removed} by ${job.removed_by ?? '?'}`] : []),
    ...(job.result_repofile ? [`result:    ${job.result_repofile}`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

export async function jobCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout.write(`${JOB_HELP}\n`);
    return sub === undefined ? 2 : 0;
  }
  const { values, positionals } = parseCommand<JobValues>(rest, OPTIONS, `job ${sub}`);
  if (values.help) return printed(io, `${JOB_HELP}\n`);
  const { settings, file } = await readConfig(values, io);
  const server = values.server ?? settings.server.value;
  if (!server)
    throw new TemplatesError('USAGE', 'job: which server?', { hint: 'give --server URL, or set TEMPLATES_SERVER' });
  if (!/^https?:\/\//.test(server))
    throw new TemplatesError('USAGE', `--server takes an http(s) URL, not ${JSON.stringify(server)}`);
  const configured = configuredCredentials(file).find(
    (credential) => server.startsWith(credential.prefix) && credential.token,
  );
  const token = io.env.TEMPLATES_TOKEN || configured?.token;
  const client = createJobClient({ url: server, ...(token ? { token } : {}) });
  const signal = io.signal;
  const print = (job: JobJson, line: string) => void io.stdout.write(values.json ? `${JSON.stringify(job)}\n` : line);
  const waitFor = async (id: number) => {
    const timeoutMs = duration(values.timeout, '--timeout');
    const job = await client.wait(id, { signal, ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}) });
    print(job, `${job.result_repofile}\n`);
    return 0;
  };
  switch (sub) {
    case 'create': {
      if (positionals.length === 0)
        throw new TemplatesError('USAGE', 'job create: give at least one template reference', {
          hint: 'usage: templates job create [--ttl 1d] REF...',
        });
      const ttl = duration(values.ttl, '--ttl');
      const job = await client.create(
        {
          refs: positionals,
          ...(ttl !== undefined ? { secondsToLive: Math.ceil(ttl / 1000) } : {}),
          ...(values.label !== undefined ? { label: values.label } : {}),
          ...(values.qcow2 ? { results: ['raw', 'qcow2'] as Array<'raw' | 'qcow2'> } : {}),
        },
        { signal },
      );
      if (values.wait) {
        io.stderr.write(`templates: job ${job.id} submitted; waiting\n`);
        return waitFor(job.id);
      }
      print(job, `${job.id}\n`);
      return 0;
    }
    case 'show': {
      const job = await client.get(oneId(positionals, 'show'), { signal });
      print(job, describe(job));
      return 0;
    }
    case 'wait':
      return waitFor(oneId(positionals, 'wait'));
    case 'renew': {
      const ttl = duration(values.ttl, '--ttl') ?? 86_400_000;
      const job = await client.renew(oneId(positionals, 'renew'), Math.ceil(ttl / 1000), { signal });
      print(job, describe(job));
      return 0;
    }
    case 'rm': {
      const job = await client.remove(oneId(positionals, 'rm'), { signal });
      print(job, describe(job));
      return job.state_name === 'failed' && job.state_code !== 'ABORTED' ? jobFailure(job).exitCode : 0;
    }
    case 'list': {
      const page = await client.list(
        {
          ...(values.state ? { state: values.state } : {}),
          ...(values.owner ? { owner: values.owner } : {}),
          ...(values.label ? { label: values.label } : {}),
          ...(values.page ? { page: Number(values.page) } : {}),
        },
        { signal },
      );
      if (values.json) return printed(io, `${JSON.stringify(page)}\n`);
      const rows = page.items.map(
        (job) =>
          `${String(job.id).padEnd(6)} ${job.state_name.padEnd(9)} ${job.owner.padEnd(12)} ${job.time_to_expire ?? '-'}  ${job.refs.map((r) => r.version).join(' ')}`,
      );
      io.stdout.write(
        `${['ID     STATE     OWNER        EXPIRES                   REFS', ...rows, `page ${page.meta.page} of ${page.meta.pages}, ${page.meta.total} jobs`].join('\n')}\n`,
      );
      return 0;
    }
    default:
      throw new TemplatesError('USAGE', `job: unknown subcommand ${JSON.stringify(sub)}`, {
        hint: 'create, show, wait, renew, rm or list',
      });
  }
}

// The CLI entry: dispatch a command, turn SIGINT/SIGTERM into an abort, map error codes to exit codes.
import { TemplatesError } from '../errors.js';
import { TOOL_VERSION } from '../version.js';
import { type CliIo, printed, report } from './io.js';
import { commandFirst } from './options.js';

type Command = (args: string[], io: CliIo) => Promise<number>;

/** Each command's module loads only when that command runs. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  fetch: async () => (await import('./commands/fetch.js')).fetchCommand,
  path: async () => (await import('./commands/path.js')).pathCommand,
  resolve: async () => (await import('./commands/resolve.js')).resolveCommand,
  index: async () => (await import('./commands/index-command.js')).indexCommand,
  list: async () => (await import('./commands/list.js')).listCommand,
  info: async () => (await import('./commands/info.js')).infoCommand,
  verify: async () => (await import('./commands/verify.js')).verifyCommand,
  use: async () => (await import('./commands/use.js')).useCommand,
  clone: async () => (await import('./commands/clone.js')).cloneCommand,
  prune: async () => (await import('./commands/prune.js')).pruneCommand,
  du: async () => (await import('./commands/du.js')).duCommand,
  rm: async () => (await import('./commands/rm.js')).rmCommand,
  import: async () => (await import('./commands/import.js')).importCommand,
  export: async () => (await import('./commands/export.js')).exportCommand,
  config: async () => (await import('./commands/config.js')).configCommand,
  serve: async () => (await import('./commands/serve.js')).serveCommand,
  job: async () => (await import('./commands/job.js')).jobCommand,
  push: async () => (await import('./commands/push.js')).pushCommand,
  status: async () => (await import('./commands/status.js')).statusCommand,
  keygen: async () => (await import('./commands/keygen.js')).keygenCommand,
  sign: async () => (await import('./commands/sign.js')).signCommand,
  lock: async () => (await import('./commands/lock.js')).lockCommand,
};

export const MAIN_HELP = `Usage: templates <command> [options]

Fetches virtual-machine disk-image templates from lago-format repositories into a local store.

Commands:
  fetch REF...     fetch templates into the store and print their paths
  path REF         print the stored path of a template (exit 3 if not stored)
  resolve REF      show the version, URLs and hash a fetch would use
  list [REPO...]   the repositories' templates and versions (--stored: what the store holds)
  info REF         resolved version, URLs, hashes, metadata and stored state
  verify [REF...]  re-hash stored images against their recorded digests
  use REF --by P   register a dependent of a stored template (prune and rm keep it)
  clone REF DEST   a VM disk backed by the stored template (qcow2 overlay; --copy: a copy), kept as its dependent
  prune            remove unused, old or over-budget templates and stray files
  du               usage per repository, template and version; free space
  rm REF...        remove stored templates
  import REF FILE  verify a local image file and store it as a download would
  serve            serve this store to neighbours over HTTP (pull-through cache, jobs, usage API, metrics)
  job              ask a templates serve to hold templates for a while (create, wait, renew, rm)
  push REF oci://HOST/NAME:TAG  push a stored template to an OCI registry (fetch oci://… reads it back)
  export REF... DIR  write stored templates as a repository another host can fetch from
  status [REPO...] each repository at its primary and mirrors: up, in sync, behind (exit 12 if not all healthy)
  config           the effective settings and where each came from
  index DIR        build a repository from a directory of images (publishing)
  lock REF...      pin exact versions and digests in templates.lock.json (fetch --locked uses it)
  keygen --output KEY   a minisign key pair for signing repositories
  sign REPO.json --key KEY  write REPO.json.minisig (fetches check it when a key is trusted)

Run 'templates <command> --help' for a command's options; the shared ones (--store, --repo, --config, …)
may also come before the command. REF is repo:name[:version].
Docs: docs/ (cli, repository format, store layout, errors and exit codes, API, publishing).`;

const SIGNAL_EXIT: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

export async function main(argv: string[], io: Omit<CliIo, 'signal'>): Promise<number> {
  const [command, ...args] = commandFirst(argv);
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(SIGNAL_EXIT[signal] ?? 1);
    controller.abort(
      new TemplatesError('ABORTED', `interrupted by ${signal}`, {
        hint: 'nothing was stored; run the command again to resume the download',
      }),
    );
  };
  let received: NodeJS.Signals | undefined;
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const handler = () => {
      received ??= signal;
      onSignal(signal);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  const cli: CliIo = { ...io, signal: controller.signal };
  try {
    if (command === '--version' || command === '-V') return printed(io, `${TOOL_VERSION}\n`);
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      io.stdout.write(`${MAIN_HELP}\n`);
      return command === undefined ? 2 : 0;
    }
    const load = COMMANDS[command];
    if (!load)
      throw new TemplatesError('USAGE', `unknown command ${JSON.stringify(command)}`, {
        hint: `commands: ${Object.keys(COMMANDS).join(', ')}`,
      });
    return await (await load())(args, cli);
  } catch (error) {
    const code = report(cli, error, args.includes('--json'));
    return received ? SIGNAL_EXIT[received]! : code;
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}

// `templates list [REPO…]` and `templates list --stored`: what the repositories offer, and what the store holds.
import { listTemplates } from '../../manage/list.js';
import { listStored } from '../../store/inventory.js';
import { describeDependent } from '../../store/layout.js';
import { formatSize } from '../../util/size.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { setup, setupStore } from '../setup.js';

export const LIST_HELP = `Usage: templates list [options] [REPO...]
       templates list --stored [options]

Lists the templates and versions of the configured repositories (or only REPO...), each template's
newest version first, marking those in the store; broken entries are shown with their reason.
With --stored, lists what the store holds: ref, apparent and allocated size, fetched at, last used,
source and dependents (repositories are not read).
With --json, one object per line.

  --stored          what the store holds
${COMMON_HELP}`;

export async function listCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<CommonValues & { stored?: boolean }>(
    args,
    { ...COMMON_OPTIONS, stored: { type: 'boolean' } },
    'list',
  );
  if (values.help) return printed(io, `${LIST_HELP}\n`);
  if (values.stored) {
    const { store } = await setupStore(values, io);
    for (const entry of await listStored({ store })) {
      const row = {
        ref: entry.ref,
        path: entry.path,
        size: entry.size,
        disk_size: entry.diskSize,
        fetchedAt: entry.fetchedAt,
        lastUsed: entry.lastUsed,
        source: entry.source,
        recorded: entry.recorded,
        dependents: entry.dependents,
      };
      io.stdout.write(
        values.json
          ? `${JSON.stringify(row)}\n`
          : `${entry.ref}  ${formatSize(entry.size)} (${formatSize(entry.diskSize)} on disk)  fetched ${entry.fetchedAt}  used ${entry.lastUsed}  ${entry.source ?? '(from lago)'}${entry.dependents.length ? `  used by ${entry.dependents.map((d) => describeDependent(store.root, d)).join(', ')}` : ''}\n`,
      );
    }
    return 0;
  }
  const { store, repositories } = await setup(values, io);
  for (const version of await listTemplates({ repositories, store, only: positionals })) {
    if (values.json) io.stdout.write(`${JSON.stringify(version)}\n`);
    else if (version.broken) io.stdout.write(`${version.ref}  BROKEN: ${version.broken}\n`);
    else
      io.stdout.write(
        `${version.ref}  ${new Date(version.timestamp! * 1000).toISOString()}${version.stored ? '  stored' : ''}\n`,
      );
  }
  return 0;
}

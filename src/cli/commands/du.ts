// `templates du`: apparent and allocated sizes per repository, template and version; the store total and free space.
import { diskUsage } from '../../manage/du.js';
import { formatSize } from '../../util/size.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { setupStore } from '../setup.js';

export const DU_HELP = `Usage: templates du [options]

Shows the store's usage per repository, template and version: size (apparent) and disk_size
(allocated; smaller for sparse images), the store's total, and the free space of its filesystem.
${COMMON_HELP}`;

export async function duCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommand<CommonValues>(args, COMMON_OPTIONS, 'du');
  if (values.help) return printed(io, `${DU_HELP}\n`);
  const { store } = await setupStore(values, io);
  const usage = await diskUsage({ store });
  if (values.json) return printed(io, `${JSON.stringify(usage)}\n`);
  const row = (indent: number, name: string, u: { size: number; disk_size: number }) =>
    `${' '.repeat(indent)}${name}  ${formatSize(u.size)}  (${formatSize(u.disk_size)} on disk)\n`;
  for (const repository of usage.repositories) {
    io.stdout.write(row(0, repository.name, repository));
    for (const template of repository.templates) {
      io.stdout.write(row(2, template.name, template));
      for (const version of template.versions) io.stdout.write(row(4, version.name, version));
    }
  }
  io.stdout.write(row(0, `total in ${usage.store}`, usage.total));
  io.stdout.write(`free: ${formatSize(usage.free)}\n`);
  return 0;
}

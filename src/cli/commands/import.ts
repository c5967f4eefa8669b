// `templates import REF FILE`: verify a local image against the repository and store it as a download would.
import { TemplatesError } from '../../errors.js';
import { importTemplate } from '../../manage/import.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { setup } from '../setup.js';

export const IMPORT_HELP = `Usage: templates import [options] REF FILE

Stores FILE (raw or qcow2, plain or xz, for example fetched elsewhere) as the template REF: it is
verified against the repository's image hash (from the JSON or the source's .hash file; for an xz
FILE with only a compressed_hash, against that), converted to raw when it is qcow2, and published
exactly as a download. Prints the stored path (with --json the same object as fetch).
${COMMON_HELP}`;

export async function importCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<CommonValues>(args, COMMON_OPTIONS, 'import');
  if (values.help) return printed(io, `${IMPORT_HELP}\n`);
  if (positionals.length !== 2)
    throw new TemplatesError('USAGE', 'import: give REF and FILE', { hint: 'usage: templates import REF FILE' });
  const { store, repositories, context, settings } = await setup(values, io);
  const result = await importTemplate(positionals[0]!, {
    file: positionals[1]!,
    store,
    repositories,
    context,
    signal: io.signal,
    offline: settings.offline.value,
  });
  io.stdout.write(values.json ? `${JSON.stringify(result)}\n` : `${result.path}\n`);
  return 0;
}

// `templates path REF`: print the stored image's path, or exit "not found" when it is not stored.
import { templatePath } from '../../fetch/describe.js';
import { TemplatesError } from '../../errors.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { setup } from '../setup.js';

export const PATH_HELP = `Usage: templates path [options] REF

Prints the absolute path of the stored image of REF without downloading anything.
Exits with code 3 (not found) when it is not in the store.
${COMMON_HELP}`;

export async function pathCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<CommonValues>(args, COMMON_OPTIONS, 'path');
  if (values.help) return printed(io, `${PATH_HELP}\n`);
  if (positionals.length !== 1)
    throw new TemplatesError('USAGE', 'path: give exactly one template reference', {
      hint: 'usage: templates path REF',
    });
  const { store, repositories } = await setup(values, io);
  const ref = positionals[0]!;
  const path = await templatePath(ref, { store, repositories });
  io.stdout.write(values.json ? `${JSON.stringify({ ref, path })}\n` : `${path}\n`);
  return 0;
}

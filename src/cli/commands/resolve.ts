// `templates resolve REF`: the version, source URLs and hash a fetch would use, without downloading the image.
import { resolveTemplate } from '../../fetch/describe.js';
import { TemplatesError } from '../../errors.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { setup } from '../setup.js';
import { resolutionLines } from '../format.js';

export const RESOLVE_HELP = `Usage: templates resolve [options] REF

Shows what \`templates fetch REF\` would use: the resolved version, its timestamp, the image URLs
tried in order, and the hash it verifies. Reads the small .hash file when the repository JSON has
no hash; never downloads the image. When the repository lists a chunk index, says what a delta
fetch into the store would move (reused from stored versions, chunks fetched) against the whole file.
${COMMON_HELP}`;

export async function resolveCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<CommonValues>(args, COMMON_OPTIONS, 'resolve');
  if (values.help) return printed(io, `${RESOLVE_HELP}\n`);
  if (positionals.length !== 1)
    throw new TemplatesError('USAGE', 'resolve: give exactly one template reference', {
      hint: 'usage: templates resolve REF',
    });
  const { repositories, context, store } = await setup(values, io);
  const r = await resolveTemplate(positionals[0]!, { repositories, context, store, signal: io.signal });
  if (values.json) {
    io.stdout.write(`${JSON.stringify(r)}\n`);
    return 0;
  }
  const lines = [`ref:        ${r.ref}`, ...resolutionLines(r, 12)];
  io.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

// `templates rm REF…`: remove stored templates under their lock (not while they have live dependents, unless --force).
import { removeEntry } from '../../manage/remove.js';
import { storedKey } from '../../manage/refs.js';
import { formatSize } from '../../util/size.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { report } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { setup, setupStore } from '../setup.js';
import { TemplatesError } from '../../errors.js';

export const RM_HELP = `Usage: templates rm [options] REF...

Removes stored templates (image and sidecars), each under its lock, so never one a fetch is writing.
A template with live dependents (templates use) is refused (exit 10) unless --force.

  --force           remove even with live dependents
${COMMON_HELP}`;

export async function rmCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<CommonValues & { force?: boolean }>(
    args,
    { ...COMMON_OPTIONS, force: { type: 'boolean' } },
    'rm',
  );
  if (values.help) return printed(io, `${RM_HELP}\n`);
  if (positionals.length === 0)
    throw new TemplatesError('USAGE', 'rm: no template reference given', { hint: 'usage: templates rm REF...' });
  const allFull = positionals.every((ref) => ref.split(':').length === 3);
  const { store, context, repositories } = allFull
    ? { ...(await setupStore(values, io)), repositories: undefined }
    : await setup(values, io);
  let exitCode = 0;
  for (const ref of positionals) {
    try {
      const key = storedKey(ref, repositories);
      const { size } = await removeEntry(store, key, {
        force: Boolean(values.force),
        signal: io.signal,
        now: context.now,
      });
      const name = `${key.repository}:${key.template}:${key.version}`;
      io.stdout.write(
        values.json
          ? `${JSON.stringify({ ref: name, removed: true, size })}\n`
          : `removed ${name} (${formatSize(size)})\n`,
      );
    } catch (error) {
      if (io.signal.aborted) throw error;
      const code = report(io, error, Boolean(values.json), ref);
      if (exitCode === 0) exitCode = code;
    }
  }
  return exitCode;
}

// `templates use REF --by PATH`: register (or --drop) a dependent of a stored template, so prune and rm keep it.
import { TemplatesError } from '../../errors.js';
import { useTemplate } from '../../manage/use.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { setup, setupStore } from '../setup.js';

export const USE_HELP = `Usage: templates use [options] REF --by PATH
       templates use [options] REF --drop PATH

Registers PATH (for example a VM disk whose backing file is the template) as a dependent of the
stored template REF: prune never removes a template with a live dependent and rm refuses it without
--force. Dependents whose PATH no longer exists are dropped automatically. Prints the live dependents.

  --by PATH         the dependent to add (it must exist)
  --drop PATH       the dependent to remove
${COMMON_HELP}`;

export async function useCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<CommonValues & { by?: string; drop?: string }>(
    args,
    { ...COMMON_OPTIONS, by: { type: 'string' }, drop: { type: 'string' } },
    'use',
  );
  if (values.help) return printed(io, `${USE_HELP}\n`);
  if (positionals.length !== 1 || (!values.by && !values.drop))
    throw new TemplatesError('USAGE', 'use: give one REF and --by PATH or --drop PATH', {
      hint: 'usage: templates use REF --by PATH',
    });
  const fully = positionals[0]!.split(':').length === 3;
  const { store, context, repositories } = fully
    ? { ...(await setupStore(values, io)), repositories: undefined }
    : await setup(values, io);
  const { ref, dependents: live } = await useTemplate(positionals[0]!, {
    store,
    ...(repositories ? { repositories } : {}),
    ...(values.by ? { by: values.by } : {}),
    ...(values.drop ? { drop: values.drop } : {}),
    signal: io.signal,
    now: context.now,
  });
  io.stdout.write(
    values.json ? `${JSON.stringify({ ref, dependents: live })}\n` : `${live.join('\n')}${live.length ? '\n' : ''}`,
  );
  return 0;
}

// `templates clone REF DEST`: a VM disk backed by (or copied from) a stored template, registered so prune and rm keep it.
import { TemplatesError } from '../../errors.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { createRenderer } from '../progress.js';
import { setup } from '../setup.js';

export const CLONE_HELP = `Usage: templates clone [options] REF DEST

Makes DEST, a disk for a VM, from the template REF (fetched first when it is not stored): a qcow2
overlay whose backing file is the stored image (backing format pinned to raw), so the VM's writes go
to DEST and the template stays as it was. DEST is registered as a dependent of the template:
prune and rm keep the template while DEST exists, and free it once DEST is gone. Prints DEST.
With --json: {"ref","path","image","method":"overlay"|"reflink"|"copy","fetch":{…}}.

  --copy            a full copy instead of an overlay: reflinked where the filesystem can share
                    blocks (FICLONE: btrfs, XFS), else a sparse copy
  --quiet           no progress output
${COMMON_HELP}`;

export async function cloneCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<CommonValues & { copy?: boolean; quiet?: boolean }>(
    args,
    { ...COMMON_OPTIONS, copy: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } },
    'clone',
  );
  if (values.help) return printed(io, `${CLONE_HELP}\n`);
  if (positionals.length !== 2)
    throw new TemplatesError('USAGE', "clone: give one template reference and the new disk's path", {
      hint: 'usage: templates clone REF DEST',
    });
  const renderer = await createRenderer(io.stderr, Boolean(values.quiet), io.stdout);
  const { store, repositories, context, settings } = await setup(values, io);
  const { cloneTemplate } = await import('../../manage/clone.js');
  try {
    const result = await cloneTemplate(positionals[0]!, {
      dest: positionals[1]!,
      store,
      repositories,
      context,
      signal: io.signal,
      offline: settings.offline.value,
      copy: Boolean(values.copy),
      onProgress: (e) => renderer.onProgress(e),
    });
    renderer.print(values.json ? `${JSON.stringify(result)}\n` : `${result.path}\n`, 'stdout');
  } finally {
    renderer.stop();
  }
  return 0;
}

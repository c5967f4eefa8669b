// `templates lock REF… [--output FILE] [--update [REF…]]`: pin exact versions and digests in a lock file.
import { TemplatesError } from '../../errors.js';
import { DEFAULT_LOCK_FILE } from '../../lockfile/file.js';
import { lockTemplates } from '../../lockfile/lock.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { readLockFileIfAny, writeLockFile } from '../lock-file.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { setup } from '../setup.js';

export const LOCK_HELP = `Usage: templates lock [options] REF...
       templates lock --update [REF...]

Resolves each REF and pins it in the lock file: the full ref, the version, the source URL, the image
digest, the compressed digest, size, format and the repository's revision. Pins already in the file
stay as they are; --update re-resolves the named ones (all, without REF). The file is sorted and
stable: when nothing changed it is not rewritten. templates fetch --locked fetches exactly what it
pins; templates verify --locked checks the store against it (docs/trust.md).

  --output FILE     the lock file (default ./templates.lock.json)
  --update          re-resolve pins: the REFs given, else every pin
${COMMON_HELP}`;

export async function lockCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<CommonValues & { output?: string; update?: boolean }>(
    args,
    { ...COMMON_OPTIONS, output: { type: 'string' }, update: { type: 'boolean' } },
    'lock',
  );
  if (values.help) return printed(io, `${LOCK_HELP}\n`);
  const file = values.output ?? DEFAULT_LOCK_FILE;
  const existing = await readLockFileIfAny(file);
  if (!positionals.length && !values.update)
    throw new TemplatesError('USAGE', 'lock: give REF… to pin, or --update', { hint: 'usage: templates lock REF...' });
  if (values.update && !existing)
    throw new TemplatesError('INPUT_NOT_FOUND', `${file}: no lock file to update`, {
      file,
      hint: 'templates lock REF… writes one',
    });
  const { repositories, context, settings } = await setup(values, io);
  const lock = await lockTemplates(values.update ? [] : positionals, {
    repositories,
    context,
    signal: io.signal,
    offline: settings.offline.value,
    ...(existing ? { existing } : {}),
    ...(values.update ? { update: positionals.length ? positionals : true } : {}),
  });
  const written = await writeLockFile(file, lock);
  if (values.json) io.stdout.write(`${JSON.stringify({ file, written, templates: lock.templates })}\n`);
  else {
    for (const [asked, pin] of Object.entries(lock.templates).sort(([a], [b]) => (a < b ? -1 : 1)))
      io.stdout.write(`${asked}: ${pin.ref} ${pin.compressed_hash ?? pin.hash}\n`);
    io.stderr.write(`${file}: ${Object.keys(lock.templates).length} pinned${written ? '' : ', unchanged'}\n`);
  }
  return 0;
}

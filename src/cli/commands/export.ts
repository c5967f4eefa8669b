// `templates export REF… DIR`: write stored templates as a repository directory another host can fetch from.
import { TemplatesError } from '../../errors.js';
import { exportTemplates } from '../../manage/export.js';
import { formatSize } from '../../util/size.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { createRenderer } from '../progress.js';
import { setup, setupStore } from '../setup.js';
import { formatChoices } from './index-command.js';

export const EXPORT_HELP = `Usage: templates export [options] REF... DIR

Writes each stored template into DIR as <repo>/<template>/<version>/image.raw.xz (multi-block xz)
and image.raw.zst, with its .hash and .metadata, and DIR/<repo>.json listing them with a "file" source rooted at "."
(relative to the JSON). Copy or mount DIR on another host and fetch with --repos DIR: the images
come back byte for byte.

  --formats LIST    xz,zst (default) or xz: the compressed files written
  --zstd-level N    zstd level 1-22 (default 19)
  -q, --quiet       no progress output
${COMMON_HELP}`;

export async function exportCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<
    CommonValues & { quiet?: boolean; formats?: string; 'zstd-level'?: string }
  >(
    args,
    {
      ...COMMON_OPTIONS,
      quiet: { type: 'boolean', short: 'q' },
      formats: { type: 'string' },
      'zstd-level': { type: 'string' },
    },
    'export',
  );
  if (values.help) return printed(io, `${EXPORT_HELP}\n`);
  if (positionals.length < 2)
    throw new TemplatesError('USAGE', 'export: give at least one REF and the DIR', {
      hint: 'usage: templates export REF... DIR',
    });
  const refs = positionals.slice(0, -1);
  const dir = positionals[positionals.length - 1]!;
  const base = await setupStore(values, io);
  const repositories = base.settings.repos.value.length ? (await setup(values, io)).repositories : undefined;
  const renderer = await createRenderer(io.stderr, Boolean(values.quiet));
  try {
    const summary = await exportTemplates(refs, {
      dir,
      store: base.store,
      ...(repositories ? { repositories } : {}),
      context: base.context,
      ...formatChoices(values),
      signal: io.signal,
      onProgress: (event) => renderer.onProgress(event),
    });
    if (values.json) io.stdout.write(`${JSON.stringify(summary)}\n`);
    else
      for (const repository of summary.repositories)
        io.stdout.write(
          `${repository.file}: ${repository.versions.join(', ')} (${formatSize(summary.bytesOut)} compressed)\n`,
        );
  } finally {
    renderer.stop();
  }
  return 0;
}

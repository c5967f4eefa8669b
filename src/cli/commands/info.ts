// `templates info REF`: the resolved version, source URLs, hashes, metadata and stored state of one template.
import { TemplatesError } from '../../errors.js';
import { templateInfo } from '../../manage/info.js';
import { describeDependent } from '../../store/layout.js';
import { formatSize } from '../../util/size.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { setup } from '../setup.js';
import { resolutionLines } from '../format.js';

export const INFO_HELP = `Usage: templates info [options] REF

Shows what REF resolves to (version, timestamp, source URLs, hashes, size, format), its metadata,
and what the store holds of it (path, sizes, fetched at, last used, what was verified, dependents).
A stored entry of a repository that is no longer configured is shown from the store.
${COMMON_HELP}`;

export async function infoCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<CommonValues>(args, COMMON_OPTIONS, 'info');
  if (values.help) return printed(io, `${INFO_HELP}\n`);
  if (positionals.length !== 1)
    throw new TemplatesError('USAGE', 'info: give exactly one template reference', {
      hint: 'usage: templates info REF',
    });
  const { store, repositories, context, settings } = await setup(values, io);
  const info = await templateInfo(positionals[0]!, {
    store,
    repositories,
    context,
    signal: io.signal,
    offline: settings.offline.value,
  });
  if (values.json) return printed(io, `${JSON.stringify(info)}\n`);
  const r = info.resolution;
  const s = info.stored;
  const lines = [
    `ref:         ${info.ref}`,
    ...(r ? resolutionLines(r, 13) : ['repository:  not configured (shown from the store)']),
    `metadata:    ${JSON.stringify(info.metadata)}`,
    ...(s
      ? [
          `stored:      ${s.path}`,
          `             ${formatSize(s.size)} (${formatSize(s.diskSize)} on disk), fetched ${s.fetchedAt}, last used ${s.lastUsed}`,
          ...(s.source ? [`from:        ${s.source}${s.mirror ? ` (mirror ${s.server})` : ''}`] : []),
          `verified:    ${s.record ? `${s.record.verified.digest} of the ${s.record.verified.of}` : 'unknown (inherited from lago)'}`,
          ...(s.dependents.length
            ? [`used by:     ${s.dependents.map((d) => describeDependent(store.root, d)).join(', ')}`]
            : []),
        ]
      : ['stored:      no']),
  ];
  io.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

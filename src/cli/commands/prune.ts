// `templates prune`: remove unused, old or over-budget templates (never with live dependents or while fetched) and stray files.
import { TemplatesError } from '../../errors.js';
import { pruneStore } from '../../manage/prune.js';
import { parseDuration } from '../../util/duration.js';
import { formatSize, parseSize } from '../../util/size.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { configuredPrunePolicy, setup, setupStore } from '../setup.js';

export const PRUNE_HELP = `Usage: templates prune [options]

Removes stored templates, each under its lock (one a fetch holds is kept and reported):
  --older-than DURATION   not used (fetched, or asked for with path) for DURATION: 90s, 30m, 12h, 7d, 2w
  --keep N                all but the newest N versions of each template (by the repository's timestamp
                          when it is configured, else by fetch time)
  --max-size SIZE         least recently used ones until the store takes at most SIZE on disk (500M, 20G)
  --force                 also templates with live dependents (templates use)
  --dry-run               only report what would go and the space it frees
Always removes stray files: temp and partial downloads, stale locks, sidecars without an image, and
lago temp files untouched for an hour. Without a criterion flag, the configured policy applies
(pruneOlderThanSeconds, pruneKeep, pruneMaxBytes; see templates config); without one, that is all it does.
${COMMON_HELP}`;

export async function pruneCommand(args: string[], io: CliIo): Promise<number> {
  const extra = {
    'older-than': { type: 'string' },
    keep: { type: 'string' },
    'max-size': { type: 'string' },
    force: { type: 'boolean' },
    'dry-run': { type: 'boolean' },
  } as const;
  const { values } = parseCommand<
    CommonValues & { 'older-than'?: string; keep?: string; 'max-size'?: string; force?: boolean; 'dry-run'?: boolean }
  >(args, { ...COMMON_OPTIONS, ...extra }, 'prune');
  if (values.help) return printed(io, `${PRUNE_HELP}\n`);
  const olderThanMs = values['older-than'] === undefined ? undefined : parseDuration(values['older-than']);
  if (values['older-than'] !== undefined && olderThanMs === undefined)
    throw new TemplatesError(
      'USAGE',
      `--older-than takes a duration such as 7d, not ${JSON.stringify(values['older-than'])}`,
    );
  const maxBytes = values['max-size'] === undefined ? undefined : parseSize(values['max-size']);
  if (values['max-size'] !== undefined && maxBytes === undefined)
    throw new TemplatesError('USAGE', `--max-size takes a size such as 20G, not ${JSON.stringify(values['max-size'])}`);
  if (values.keep !== undefined && !/^\d+$/.test(values.keep))
    throw new TemplatesError('USAGE', `--keep takes a whole number, not ${JSON.stringify(values.keep)}`);
  const base = await setupStore(values, io);
  // No criterion flag: the configured policy (pruneOlderThanSeconds, pruneKeep, pruneMaxBytes), if any.
  const flagged = olderThanMs !== undefined || values.keep !== undefined || maxBytes !== undefined;
  const policy = flagged
    ? {
        ...(olderThanMs !== undefined ? { olderThanMs } : {}),
        ...(values.keep !== undefined ? { keep: Number(values.keep) } : {}),
        ...(maxBytes !== undefined ? { maxBytes } : {}),
      }
    : configuredPrunePolicy(base.settings);
  // Repositories only matter for a keep criterion (version timestamps); without any configured, fetch times are used.
  const repositories =
    policy.keep !== undefined && base.settings.repos.value.length ? (await setup(values, io)).repositories : undefined;
  const result = await pruneStore({
    store: base.store,
    ...policy,
    force: Boolean(values.force),
    dryRun: Boolean(values['dry-run']),
    ...(repositories ? { repositories } : {}),
    now: base.context.now,
    signal: io.signal,
  });
  if (values.json) return printed(io, `${JSON.stringify(result)}\n`);
  const verb = result.dryRun ? 'would remove' : 'removed';
  for (const entry of result.removed)
    io.stdout.write(`${verb} ${entry.ref} (${formatSize(entry.diskSize)}): ${entry.reason}\n`);
  for (const entry of result.kept) io.stdout.write(`kept ${entry.ref}: ${entry.reason}\n`);
  for (const path of result.cleaned) io.stdout.write(`${result.dryRun ? 'would clean' : 'cleaned'} ${path}\n`);
  io.stdout.write(`${result.dryRun ? 'would free' : 'freed'} ${formatSize(result.freed)}\n`);
  return 0;
}

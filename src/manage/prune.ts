// prune: remove what is unused, old or over budget, never what has live dependents or a fetch holds; clean stray files.
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isTemplatesError } from '../errors.js';
import type { RepositorySet } from '../repository/set.js';
import { isValidName } from '../repository/reference.js';
import { listStored, summarizeEntry, type StoredSummary } from '../store/inventory.js';
import {
  SIDECAR_SUFFIXES,
  imagePath,
  lagoTempPath,
  lockPath,
  parseEntryName,
  repoCacheDir,
  tempDir,
  type VersionKey,
} from '../store/layout.js';
import { withEntryLock } from '../store/lock.js';
import type { Store } from '../store/store.js';
import { isAtomicTemp } from '../util/atomic-write.js';
import { deleteEntryFiles } from '../store/delete.js';
import { leastRecentlyUsed } from '../store/room.js';

export interface PruneOptions {
  store: Store;
  /** Remove entries not used for this long. */
  olderThanMs?: number;
  /** Keep the newest N versions of each template (by the repository's timestamp when known, else fetch time). */
  keep?: number;
  /** Remove least recently used entries until the store's allocated size is at most this. */
  maxBytes?: number;
  /** Also remove entries with live dependents. */
  force?: boolean;
  /** Report only; change nothing. */
  dryRun?: boolean;
  /** For version timestamps (--keep); optional. */
  repositories?: RepositorySet;
  now?: () => number;
  signal?: AbortSignal;
}

export interface PruneReport {
  removed: Array<{ ref: string; size: number; diskSize: number; reason: string }>;
  /** Chosen for removal but kept: live dependents, or a fetch holding the lock. */
  kept: Array<{ ref: string; reason: string }>;
  /** Stray files removed (or that would be): temp and partial downloads, stale lock directories, sidecars without an image. */
  cleaned: string[];
  /** Bytes on disk freed (or that would be). */
  freed: number;
  dryRun: boolean;
}

/** lago's in-progress files untouched for this long belong to a dead lago process. */
const LAGO_TEMP_MAX_AGE_MS = 3_600_000;

function versionTime(entry: StoredSummary, repositories: RepositorySet | undefined): number {
  const spec = repositories?.version(entry.key);
  return spec ? spec.timestamp * 1000 : Date.parse(entry.fetchedAt);
}

/** What goes and why, in a deterministic order: age, then --keep, then --max-size by least recent use. */
export function choosePrune(
  entries: StoredSummary[],
  options: Omit<PruneOptions, 'store'>,
  now: number,
): Map<string, string> {
  const chosen = new Map<string, string>();
  if (options.olderThanMs !== undefined) {
    for (const entry of entries)
      if (now - Date.parse(entry.lastUsed) > options.olderThanMs)
        chosen.set(entry.ref, `not used since ${entry.lastUsed}`);
  }
  if (options.keep !== undefined) {
    const byTemplate = new Map<string, StoredSummary[]>();
    for (const entry of entries) {
      const id = `${entry.key.repository}:${entry.key.template}`;
      byTemplate.set(id, [...(byTemplate.get(id) ?? []), entry]);
    }
    for (const group of byTemplate.values()) {
      const newestFirst = [...group].sort(
        (a, b) => versionTime(b, options.repositories) - versionTime(a, options.repositories),
      );
      for (const entry of newestFirst.slice(options.keep))
        if (!chosen.has(entry.ref)) chosen.set(entry.ref, `older than the newest ${options.keep}`);
    }
  }
  if (options.maxBytes !== undefined) {
    const rest = entries.filter((entry) => !chosen.has(entry.ref));
    const total = rest.reduce((sum, entry) => sum + entry.diskSize, 0);
    for (const entry of leastRecentlyUsed(rest, total - options.maxBytes, options.force)) {
      chosen.set(entry.ref, `least recently used (${entry.lastUsed}) while over the size limit`);
    }
  }
  return chosen;
}

/** Runs `fn` under the entry's lock without waiting; false when someone holds it. */
async function ifUnlocked(
  store: Store,
  key: VersionKey,
  signal: AbortSignal | undefined,
  fn: () => Promise<void>,
): Promise<boolean> {
  try {
    await withEntryLock({ ...store, lockWaitMs: 0 }, key, signal ? { signal } : {}, fn);
    return true;
  } catch (error) {
    if (isTemplatesError(error, 'LOCK_TIMEOUT')) return false;
    throw error;
  }
}

/** Temp and partial files, stale lock directories and orphaned sidecars, each removed under its entry's lock. */
async function cleanStray(store: Store, options: PruneOptions, now: number): Promise<string[]> {
  const cleaned: string[] = [];
  const names = await readdir(store.root).catch(() => [] as string[]);
  const present = new Set(names);
  const keys = new Map<string, VersionKey>();
  for (const name of names) {
    const base = name.replace(/\.(hash|metadata|record\.json|users|lock|tmp)$/, '');
    const key = base !== name ? parseEntryName(base, isValidName) : undefined;
    if (key && !present.has(base)) keys.set(base, key);
  }
  for (const name of await readdir(tempDir(store.root)).catch(() => [] as string[])) {
    const key = parseEntryName(name, isValidName);
    if (key) keys.set(name, key);
    else if (isAtomicTemp(name)) cleaned.push(join(tempDir(store.root), name));
  }
  for (const name of await readdir(repoCacheDir(store.root)).catch(() => [] as string[])) {
    if (isAtomicTemp(name) || /\.\d+\.tmp$/.test(name)) cleaned.push(join(repoCacheDir(store.root), name));
  }
  if (!options.dryRun) await Promise.all(cleaned.map((path) => rm(path, { force: true })));
  for (const [name, key] of keys) {
    const image = imagePath(store.root, key);
    const stray = [
      ...(present.has(name)
        ? []
        : SIDECAR_SUFFIXES.map((suffix) => `${image}${suffix}`).filter((path) =>
            present.has(path.slice(store.root.length + 1)),
          )),
      ...((await stat(join(tempDir(store.root), name)).catch(() => undefined))
        ? [join(tempDir(store.root), name)]
        : []),
    ];
    const lagoTemp = lagoTempPath(store.root, key);
    const lagoInfo = await stat(lagoTemp).catch(() => undefined);
    if (lagoInfo && now - lagoInfo.mtimeMs > LAGO_TEMP_MAX_AGE_MS) stray.push(lagoTemp);
    // lago's lock files stay (lago never removes them: a removed one lets two holders in); an older templates' lock
    // directory is replaced by one when its entry's lock is taken below, if no live holder refreshes it.
    const lockInfo = present.has(`${name}.lock`)
      ? await stat(lockPath(store.root, key)).catch(() => undefined)
      : undefined;
    const staleLock =
      lockInfo?.isDirectory() && now - lockInfo.mtimeMs >= store.lockStaleMs ? [lockPath(store.root, key)] : [];
    if (!stray.length && !staleLock.length) continue;
    if (options.dryRun) {
      cleaned.push(...stray, ...staleLock);
      continue;
    }
    // Taking the lock replaces a stale lock directory with lago's lock file.
    const done = await ifUnlocked(store, key, options.signal, async () => {
      await Promise.all(stray.map((path) => rm(path, { recursive: true, force: true })));
    });
    if (done) cleaned.push(...stray, ...staleLock);
  }
  return cleaned.sort();
}

export async function pruneStore(options: PruneOptions): Promise<PruneReport> {
  const { store } = options;
  const now = (options.now ?? Date.now)();
  const entries = await listStored({ store });
  const chosen = choosePrune(entries, options, now);
  const report: PruneReport = { removed: [], kept: [], cleaned: [], freed: 0, dryRun: Boolean(options.dryRun) };
  for (const entry of entries) {
    const reason = chosen.get(entry.ref);
    if (!reason) continue;
    if (entry.dependents.length && !options.force) {
      report.kept.push({ ref: entry.ref, reason: `used by ${entry.dependents.join(', ')}` });
      continue;
    }
    if (!options.dryRun) {
      let outcome = 'gone' as 'removed' | 'gone' | 'dependents';
      const locked = !(await ifUnlocked(store, entry.key, options.signal, async () => {
        // Checked again under the lock: a `use --by` may have registered a dependent meanwhile.
        const again = await summarizeEntry(store, entry.key);
        if (!again) return;
        if (again.dependents.length && !options.force) {
          outcome = 'dependents';
          return;
        }
        await deleteEntryFiles(store, entry.key);
        outcome = 'removed';
      }));
      if (locked || outcome === 'dependents') {
        report.kept.push({
          ref: entry.ref,
          reason: locked ? 'in use: a fetch holds its lock' : 'a dependent was registered meanwhile',
        });
        continue;
      }
      if (outcome === 'gone') continue;
    }
    report.removed.push({ ref: entry.ref, size: entry.size, diskSize: entry.diskSize, reason });
    report.freed += entry.diskSize;
  }
  report.cleaned = await cleanStray(store, options, now);
  return report;
}

// Running one job: check each pin, fetch through the store (its lock shares downloads), hold, render qcow2, report progress.
import type { Context } from '../context.js';
import { TemplatesError, asTemplatesError } from '../errors.js';
import { fetchTemplate } from '../fetch/fetch.js';
import { ensureQcow2 } from '../manage/qcow2.js';
import type { VersionSpec } from '../repository/model.js';
import { resolveReference } from '../repository/resolve.js';
import type { VersionKey } from '../repository/reference.js';
import type { RepositorySet } from '../repository/set.js';
import { readStoredEntry, type Store } from '../store/store.js';
import type { JobDatabase } from './database.js';
import { attachHold, createHold } from './holds.js';
import { JOB_STATES, type Job } from './model.js';

/** How often a fetching job's progress is written and announced, at most. */
const PROGRESS_EVERY_MS = 250;

export interface RunDeps {
  store: Store;
  context: Context;
  db: JobDatabase;
  repositories: () => RepositorySet;
  /** A job's state or progress changed. */
  announce(job: Job, kind: 'state' | 'progress'): void;
}

/** The digest a version is pinned to: what the repository says of its image (or of its .xz), if anything. */
export function pinOf(version: VersionSpec): string | null {
  const digest = version.hash ?? version.compressedHash;
  return digest ? `${digest.algorithm}:${digest.hex}` : null;
}

/** The entry a pinned reference names now, failing when upstream no longer serves it with the pinned digest. */
function checkPin(ref: Job['refs'][number], repositories: RepositorySet): VersionKey {
  let resolved: ReturnType<typeof resolveReference>;
  try {
    resolved = resolveReference(ref.version, repositories);
  } catch (error) {
    const failure = asTemplatesError(error);
    throw new TemplatesError(
      failure.code,
      `${ref.version} (pinned to ${ref.digest ?? 'no digest'}) is no longer served: ${failure.message}`,
      { ref: ref.version },
      { cause: error },
    );
  }
  const now = pinOf(resolved.version);
  if (ref.digest !== null && now !== ref.digest) {
    throw new TemplatesError(
      'HASH_MISMATCH',
      `${ref.version} was pinned to ${ref.digest} but the repository now lists ${now ?? 'no digest'}`,
      {
        ref: ref.version,
        expected: ref.digest,
        actual: now ?? 'none',
        hint: 'submit a new job for the version upstream serves now',
      },
    );
  }
  return resolved.key;
}

/**
 * Fetches every pinned reference of a job that is fetching, in order, each held by the job once stored (so a prune
 * between two references cannot take the first). Throws the first failure; `signal` cancels.
 */
export async function runJob(deps: RunDeps, job: Job, signal: AbortSignal): Promise<void> {
  const { store, context, db } = deps;
  await createHold(store, job.id, job.owner);
  let before = 0;
  let lastWrite = 0;
  for (const [index, ref] of job.refs.entries()) {
    const repositories = deps.repositories();
    const key = checkPin(ref, repositories);
    // Stored and held; a prune that took the entry between the fetch and the hold makes it fetch once more.
    for (let attempt = 0; attempt < 2; attempt++) {
      await fetchTemplate(ref.version, {
        store,
        context,
        repositories,
        signal,
        onProgress: (event) => {
          if (event.phase !== 'download' || context.now() - lastWrite < PROGRESS_EVERY_MS) return;
          lastWrite = context.now();
          db.setProgress(job.id, before + event.bytes, event.total !== undefined ? before + event.total : null);
          deps.announce(db.get(job.id)!, 'progress');
        },
      });
      await attachHold(store, key, job.id, context.now, signal);
      if (await readStoredEntry(store, key)) break;
    }
    const entry = await readStoredEntry(store, key);
    if (!entry)
      throw new TemplatesError('NOT_STORED', `${ref.version} was removed while the job fetched it`, {
        ref: ref.version,
        hint: 'renew the job',
      });
    if (job.results.includes('qcow2')) await ensureQcow2(store, key, context, signal);
    before += entry.size;
    db.setProgress(job.id, before, null);
    db.setRefState(job.id, index, JOB_STATES.done);
    deps.announce(db.get(job.id)!, 'progress');
  }
}

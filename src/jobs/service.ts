// The job service: submit (resolve and pin), run on N workers (one download per template), renew, cancel, expire and free.
import { EventEmitter } from 'node:events';
import type { Context } from '../context.js';
import { TemplatesError, asTemplatesError } from '../errors.js';
import { fetchTemplate } from '../fetch/fetch.js';
import { removeEntry } from '../manage/remove.js';
import { resolveReference } from '../repository/resolve.js';
import type { RepositorySet } from '../repository/set.js';
import type { VersionSpec } from '../repository/model.js';
import { parseEntryName } from '../store/layout.js';
import { readStoredEntry, type Store } from '../store/store.js';
import { isValidName } from '../repository/reference.js';
import type { JobDatabase } from './database.js';
import { JOB_STATES, type Job } from './model.js';

export interface JobRequest {
  refs: string[];
  secondsToLive: number;
  results?: string[];
  label?: string | null;
}

export interface JobServiceOptions {
  store: Store;
  context: Context;
  db: JobDatabase;
  repositories: () => RepositorySet;
  /** Jobs fetching at once (default 2). */
  workers?: number;
  maxSecondsToLive?: number;
  maxRefs?: number;
}

export interface JobService {
  submit(request: JobRequest, owner: string): Job;
  renew(id: number, secondsToLive: number, user: string, admin: boolean): Job;
  cancel(id: number, user: string, admin: boolean): Job;
  /** Moves expired jobs to removed and frees what no one holds any more; run by a timer and at start. */
  sweep(): Promise<void>;
  /** State changes and progress, for server-sent events: `job` with the job id. */
  events: EventEmitter<{ job: [Job] }>;
  /** Resolves once nothing is fetching (tests, shutdown). */
  idle(): Promise<void>;
  close(): void;
}

/** The digest a version is pinned to: what the repository says of its image (or of its .xz), if anything. */
export function pinOf(version: VersionSpec): string | null {
  const digest = version.hash ?? version.compressedHash;
  return digest ? `${digest.algorithm}:${digest.hex}` : null;
}

export function createJobService(options: JobServiceOptions): JobService {
  const { db, store, context } = options;
  const events = new EventEmitter<{ job: [Job] }>();
  events.setMaxListeners(0);
  const running = new Map<number, AbortController>();
  const settled: Array<() => void> = [];
  const workers = options.workers ?? 2;
  const emit = (job: Job) => {
    events.emit('job', job);
    return job;
  };
  const owns = (job: Job, user: string, admin: boolean) => {
    if (!admin && job.owner !== user) throw new TemplatesError('JOB_FORBIDDEN', `job ${job.id} belongs to ${job.owner}`, { hint: 'only its owner or an admin may change it' });
  };

  async function run(job: Job): Promise<void> {
    const abort = new AbortController();
    running.set(job.id, abort);
    try {
      emit(db.move(job.id, JOB_STATES.fetching, context.now()));
      let done = 0;
      for (const [index, ref] of job.refs.entries()) {
        // The version must still be the one pinned: its digest in the repository now is compared with the pin.
        let now: VersionSpec;
        try {
          now = resolveReference(ref.version, options.repositories()).version;
        } catch (error) {
          throw new TemplatesError(asTemplatesError(error).code, `${ref.version} (pinned to ${ref.digest ?? 'no digest'}) is no longer served: ${asTemplatesError(error).message}`, { ref: ref.version }, { cause: error });
        }
        if (ref.digest !== null && pinOf(now) !== ref.digest) {
          throw new TemplatesError('HASH_MISMATCH', `${ref.version} was pinned to ${ref.digest} but the repository now lists ${pinOf(now) ?? 'no digest'}`, { ref: ref.version, expected: ref.digest, actual: pinOf(now) ?? 'none' });
        }
        await fetchTemplate(ref.version, {
          store, context, repositories: options.repositories(), signal: abort.signal,
          onProgress: (event) => {
            if (event.phase === 'download') db.setProgress(job.id, done + event.bytes, event.total !== undefined ? done + event.total : null);
          },
        });
        done = db.get(job.id)!.progress.bytes;
        db.setRefState(job.id, index, JOB_STATES.done);
        emit(db.get(job.id)!);
      }
      emit(db.move(job.id, JOB_STATES.done, context.now()));
    } catch (error) {
      const current = db.get(job.id);
      // A cancelled job was moved already; anything else failed with its reason.
      if (current && current.state === JOB_STATES.fetching) emit(db.move(job.id, JOB_STATES.failed, context.now(), { reason: abort.signal.aborted ? String((abort.signal.reason as Error)?.message ?? 'cancelled') : asTemplatesError(error).toLine() }));
    } finally {
      running.delete(job.id);
      schedule();
      if (running.size === 0) settled.splice(0).forEach((resolve) => resolve());
    }
  }

  function schedule(): void {
    const free = workers - running.size;
    if (free <= 0) return;
    for (const job of db.waiting(free)) if (!running.has(job.id)) void run(job);
  }

  /**
   * Frees stored versions that removed jobs released and no live job holds (dependents and running fetches keep
   * theirs, and are tried again at the next sweep).
   */
  async function free(): Promise<void> {
    const held = db.heldVersions();
    for (const version of db.releasedVersions()) {
      if (held.has(version)) continue;
      const key = parseEntryName(version, isValidName);
      if (!key || !(await readStoredEntry(store, key))) continue;
      // Without waiting: a running fetch holds the lock (LOCK_TIMEOUT), live dependents refuse (ENTRY_IN_USE); both keep it.
      await removeEntry({ ...store, lockWaitMs: 0 }, key, { now: context.now }).catch(() => undefined);
    }
  }

  db.recover();
  queueMicrotask(schedule);

  return {
    events,
    submit(request, owner) {
      const max = options.maxRefs ?? 50;
      if (!Array.isArray(request.refs) || request.refs.length === 0 || request.refs.length > max || !request.refs.every((r) => typeof r === 'string')) {
        throw new TemplatesError('USAGE', `refs must be 1 to ${max} references`, { hint: 'e.g. {"refs": ["repo:name:version"], "seconds_to_live": 3600}' });
      }
      const ttl = request.secondsToLive;
      if (!Number.isInteger(ttl) || ttl <= 0 || ttl > (options.maxSecondsToLive ?? 7 * 86_400)) {
        throw new TemplatesError('USAGE', `seconds_to_live must be a whole number from 1 to ${options.maxSecondsToLive ?? 7 * 86_400}`, {});
      }
      const results = request.results ?? ['raw'];
      if (!results.every((r) => r === 'raw' || r === 'qcow2') || !results.includes('raw')) throw new TemplatesError('USAGE', 'results must be ["raw"] or ["raw", "qcow2"]');
      // Resolved now: a version-less reference is pinned to the newest version and its digest; nothing is queued on error.
      const refs = request.refs.map((ref) => {
        const resolved = resolveReference(ref, options.repositories());
        return { ref, version: resolved.ref, digest: pinOf(resolved.version) };
      });
      const job = db.create({ owner, label: request.label ?? null, results, secondsToLive: ttl, refs }, context.now());
      queueMicrotask(schedule);
      return emit(job);
    },
    renew(id, secondsToLive, user, admin) {
      const job = db.get(id);
      if (!job) throw new TemplatesError('JOB_NOT_FOUND', `no job ${id}`);
      owns(job, user, admin);
      if (job.state === JOB_STATES.done) return emit(db.extend(id, secondsToLive, context.now()));
      if (job.state === JOB_STATES.removed || job.state === JOB_STATES.failed) {
        const again = emit(db.move(id, JOB_STATES.wait, context.now(), { secondsToLive }));
        queueMicrotask(schedule);
        return again;
      }
      throw new TemplatesError('JOB_CONFLICT', `job ${id} is not done yet; renew it once it is`);
    },
    cancel(id, user, admin) {
      const job = db.get(id);
      if (!job) throw new TemplatesError('JOB_NOT_FOUND', `no job ${id}`);
      owns(job, user, admin);
      if (job.state === JOB_STATES.wait || job.state === JOB_STATES.fetching) {
        const moved = emit(db.move(id, JOB_STATES.failed, context.now(), { reason: `cancelled by ${user}` }));
        running.get(id)?.abort(new TemplatesError('ABORTED', `cancelled by ${user}`));
        return moved;
      }
      if (job.state === JOB_STATES.done) {
        const moved = emit(db.move(id, JOB_STATES.removed, context.now(), { removedBy: user }));
        void free().catch(() => undefined);
        return moved;
      }
      throw new TemplatesError('JOB_CONFLICT', `job ${id} is ${job.state === JOB_STATES.removed ? 'removed' : 'failed'} already`);
    },
    async sweep() {
      for (const job of db.expired(context.now())) emit(db.move(job.id, JOB_STATES.removed, context.now(), { removedBy: 'expiry' }));
      await free();
    },
    idle: () => (running.size === 0 && db.waiting(1).length === 0 ? Promise.resolve() : new Promise((resolve) => settled.push(resolve))),
    close() {
      for (const abort of running.values()) abort.abort(new TemplatesError('ABORTED', 'the server is shutting down'));
    },
  };
}

// The job service: submit (resolve and pin), run on N workers, renew, cancel, expire, and free what nothing holds.
import { readdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EventEmitter } from 'node:events';
import type { Context } from '../context.js';
import { TemplatesError, asTemplatesError } from '../errors.js';
import { resolveReference } from '../repository/resolve.js';
import type { RepositorySet } from '../repository/set.js';
import { isValidName } from '../repository/reference.js';
import { jobHoldPath, parseEntryName, type VersionKey } from '../store/layout.js';
import type { Store } from '../store/store.js';
import type { JobDatabase, JobQuery } from './database.js';
import { freeUnheld, releaseHold } from './holds.js';
import { JOB_STATES, isLive, type Job } from './model.js';
import { pinOf, runJob } from './run.js';

interface JobRequest {
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
  /** Largest seconds_to_live accepted (default 7 days). */
  maxSecondsToLive?: number;
  /** Most references in one job (default 50). */
  maxRefs?: number;
}

export interface JobEvents {
  /** A job's state changed (`state`), or its progress (`progress`). */
  job: [Job, 'state' | 'progress'];
}

export interface JobService {
  /** One job; JOB_NOT_FOUND when there is none. */
  get(id: number): Job;
  /** A page of jobs matching the query, and how many match in all. */
  list(query: JobQuery): { items: Job[]; total: number };
  submit(request: JobRequest, owner: string): Job;
  renew(id: number, secondsToLive: number, user: string, admin: boolean): Job;
  /** Cancels a waiting or fetching job (failed), removes a done one now (its entries freed unless held otherwise). */
  cancel(id: number, user: string, admin: boolean): Promise<Job>;
  /** Moves expired jobs to removed and frees what nothing holds any more; run by a timer and at start. */
  sweep(): Promise<void>;
  events: EventEmitter<JobEvents>;
  /** Resolves once nothing fetches or waits (tests, shutdown). */
  idle(): Promise<void>;
  /** Stops starting jobs; those fetching go on (shutdown's grace). */
  stop(): void;
  /** Stops starting jobs and aborts those fetching (they fetch again after a restart). */
  close(): void;
}

/** Removed and failed jobs' versions are freed for this long after they ended (later sweeps retry what was busy). */
const FREE_WINDOW_MS = 7 * 86_400_000;

function keyOf(version: string): VersionKey | undefined {
  return parseEntryName(version, isValidName);
}

export function createJobService(options: JobServiceOptions): JobService {
  const { db, store, context } = options;
  const events = new EventEmitter<JobEvents>();
  events.setMaxListeners(0);
  const running = new Map<number, AbortController>();
  const settled: Array<() => void> = [];
  const workers = options.workers ?? 2;
  const maxTtl = options.maxSecondsToLive ?? 7 * 86_400;
  let closed = false;
  const announce = (job: Job, kind: 'state' | 'progress' = 'state') => {
    events.emit('job', job, kind);
    return job;
  };
  const find = (id: number) => {
    const job = db.get(id);
    if (!job) throw new TemplatesError('JOB_NOT_FOUND', `no job ${id}`, { hint: 'see GET /api/1/jobs' });
    return job;
  };
  const owns = (job: Job, user: string, admin: boolean) => {
    if (!admin && job.owner !== user)
      throw new TemplatesError('JOB_FORBIDDEN', `job ${job.id} belongs to ${job.owner}`, {
        hint: 'only its owner or an admin may change it',
      });
  };

  /** Frees the versions of jobs that ended, unless a live job, a dependent or a fetch holds them. */
  async function free(): Promise<void> {
    const held = db.heldVersions();
    const keys = [...db.releasedVersions(context.now() - FREE_WINDOW_MS)]
      .map(keyOf)
      .filter((key): key is VersionKey => key !== undefined);
    await freeUnheld(store, keys, held, context.now);
  }

  /** A job that ended (removed, failed): its hold goes, then what it alone held. */
  async function release(id: number): Promise<void> {
    await releaseHold(store, id);
    await free();
  }

  async function run(job: Job): Promise<void> {
    const abort = new AbortController();
    running.set(job.id, abort);
    try {
      announce(db.move(job.id, JOB_STATES.fetching, context.now()));
      await runJob({ store, context, db, repositories: options.repositories, announce }, job, abort.signal);
      announce(db.move(job.id, JOB_STATES.done, context.now()));
    } catch (error) {
      const current = db.get(job.id);
      // A cancelled job was moved already; one stopped by close() fetches again after a restart; anything else failed.
      if (current?.state === JOB_STATES.fetching && !closed) {
        announce(
          db.move(job.id, JOB_STATES.failed, context.now(), {
            reason: asTemplatesError(error).toLine(),
            code: asTemplatesError(error).code,
          }),
        );
      }
    } finally {
      running.delete(job.id);
      if (!isLive(db.get(job.id)?.state ?? JOB_STATES.failed)) await release(job.id).catch(() => undefined);
      schedule();
      if (running.size === 0 && (closed || db.waiting(1).length === 0))
        for (const resolve of settled.splice(0)) resolve();
    }
  }

  function schedule(): void {
    if (closed) return;
    // run() moves a job to fetching before its first await, so waiting() never returns one that runs.
    const free = workers - running.size;
    if (free > 0) for (const job of db.waiting(free)) void run(job);
  }

  /** After a restart: jobs left fetching wait again; holds of jobs that ended but kept their file (a kill) go. */
  async function recover(): Promise<void> {
    db.recover();
    const names = await readdir(dirname(jobHoldPath(store.root, 0))).catch(() => [] as string[]);
    const ids = names
      .map((name) => /^job-(\d+)$/.exec(name)?.[1])
      .filter((id): id is string => id !== undefined)
      .map(Number);
    for (const id of db.notLive(ids)) await releaseHold(store, id);
  }

  const ready = recover().then(schedule, () => schedule());

  return {
    events,
    get: find,
    list: (query) => db.list(query),
    submit(request, owner) {
      const max = options.maxRefs ?? 50;
      if (
        !Array.isArray(request.refs) ||
        request.refs.length === 0 ||
        request.refs.length > max ||
        !request.refs.every((r) => typeof r === 'string')
      ) {
        throw new TemplatesError('USAGE', `refs must be a list of 1 to ${max} references`, {
          hint: 'e.g. {"refs": ["repo:name:version"], "seconds_to_live": 3600}',
        });
      }
      const ttl = request.secondsToLive;
      if (!Number.isInteger(ttl) || ttl <= 0 || ttl > maxTtl) {
        throw new TemplatesError('USAGE', `seconds_to_live must be a whole number from 1 to ${maxTtl}`, {
          hint: "the server's --max-seconds-to-live caps it; renew the job to keep it longer",
        });
      }
      const results = request.results ?? ['raw'];
      if (!Array.isArray(results) || !results.every((r) => r === 'raw' || r === 'qcow2') || !results.includes('raw')) {
        throw new TemplatesError('USAGE', 'results must be ["raw"] or ["raw", "qcow2"]');
      }
      if (
        request.label !== undefined &&
        request.label !== null &&
        (typeof request.label !== 'string' || request.label.length > 200)
      ) {
        throw new TemplatesError('USAGE', 'label must be a string of at most 200 characters');
      }
      // Resolved now: a version-less reference is pinned to the newest version and its digest; nothing is queued on error.
      const refs = request.refs.map((ref) => {
        const resolved = resolveReference(ref, options.repositories());
        return { ref, version: resolved.ref, digest: pinOf(resolved.version) };
      });
      const job = db.create(
        { owner, label: request.label ?? null, results: [...new Set(results)], secondsToLive: ttl, refs },
        context.now(),
      );
      queueMicrotask(schedule);
      return announce(job);
    },
    renew(id, secondsToLive, user, admin) {
      const job = find(id);
      owns(job, user, admin);
      if (!Number.isInteger(secondsToLive) || secondsToLive <= 0 || secondsToLive > maxTtl) {
        throw new TemplatesError('USAGE', `seconds_to_live must be a whole number from 1 to ${maxTtl}`);
      }
      if (job.state === JOB_STATES.done) return announce(db.extend(id, secondsToLive, context.now()));
      if (job.state === JOB_STATES.removed || job.state === JOB_STATES.failed) {
        const again = announce(db.move(id, JOB_STATES.wait, context.now(), { secondsToLive }));
        queueMicrotask(schedule);
        return again;
      }
      throw new TemplatesError(
        'JOB_CONFLICT',
        `job ${id} is ${job.state === JOB_STATES.wait ? 'waiting' : 'fetching'}; renew it once it is done`,
        { hint: 'wait for it: templates job wait ID' },
      );
    },
    async cancel(id, user, admin) {
      const job = find(id);
      owns(job, user, admin);
      if (job.state === JOB_STATES.wait || job.state === JOB_STATES.fetching) {
        const moved = announce(
          db.move(id, JOB_STATES.failed, context.now(), { reason: `cancelled by ${user}`, code: 'ABORTED' }),
        );
        const fetching = running.get(id);
        if (fetching) fetching.abort(new TemplatesError('ABORTED', `cancelled by ${user}`));
        else await release(id).catch(() => undefined);
        return moved;
      }
      if (job.state === JOB_STATES.done) {
        const moved = announce(db.move(id, JOB_STATES.removed, context.now(), { removedBy: user }));
        await release(id).catch(() => undefined);
        return moved;
      }
      throw new TemplatesError(
        'JOB_CONFLICT',
        `job ${id} is ${job.state === JOB_STATES.removed ? 'removed' : 'failed'} already`,
        { hint: 'renew it to fetch it again' },
      );
    },
    async sweep() {
      await ready;
      for (const job of db.expired(context.now())) {
        announce(db.move(job.id, JOB_STATES.removed, context.now(), { removedBy: 'expiry' }));
        await releaseHold(store, job.id);
      }
      await free();
    },
    idle: () =>
      running.size === 0 && (closed || db.waiting(1).length === 0)
        ? Promise.resolve()
        : new Promise((resolve) => settled.push(resolve)),
    stop() {
      closed = true;
    },
    close() {
      closed = true;
      for (const abort of running.values()) abort.abort(new TemplatesError('ABORTED', 'the server is shutting down'));
    },
  };
}

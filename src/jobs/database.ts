// The jobs' database: one SQLite file inside the store (better-sqlite3, WAL, busy timeout), jobs and their pinned references.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { createRequire } from 'node:module';
import { TemplatesError, storeIoError } from '../errors.js';
import { JOB_STATES, canMove, stateName, type Job, type JobRef, type JobState, type JobStateName } from './model.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  owner TEXT NOT NULL,
  label TEXT,
  results TEXT NOT NULL,
  seconds_to_live INTEGER NOT NULL,
  state INTEGER NOT NULL,
  state_reason TEXT,
  state_code TEXT,
  time_submitted INTEGER NOT NULL,
  time_started INTEGER,
  time_done INTEGER,
  time_to_expire INTEGER,
  time_removed INTEGER,
  removed_by TEXT,
  progress_bytes INTEGER NOT NULL DEFAULT 0,
  progress_total INTEGER
);
CREATE TABLE IF NOT EXISTS job_refs (
  job_id INTEGER NOT NULL REFERENCES jobs(id),
  idx INTEGER NOT NULL,
  ref TEXT NOT NULL,
  version TEXT NOT NULL,
  digest TEXT,
  state INTEGER NOT NULL,
  PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner);
`;

export interface NewJob {
  owner: string;
  label?: string | null;
  results: string[];
  secondsToLive: number;
  refs: Array<Pick<JobRef, 'ref' | 'version' | 'digest'>>;
}

export interface JobQuery {
  state?: JobState;
  owner?: string;
  label?: string;
  /** `id` (oldest first) or `-id` (newest first, the default). */
  orderBy?: 'id' | '-id';
  page?: number;
  perPage?: number;
}

type Row = Record<string, unknown>;

/**
 * Native objects kept until the process ends (the one piece of module state here, on purpose): see #stmt. A server
 * opens one database; tests open a few dozen.
 */
const RETAINED = new Set<unknown>();

export class JobDatabase {
  readonly #db: BetterSqlite3.Database;
  readonly #statements = new Map<string, BetterSqlite3.Statement>();

  /** Opens (creates) the database at `path`; a file that is not one is STORE_IO. */
  constructor(readonly path: string) {
    try {
      mkdirSync(dirname(path), { recursive: true });
      const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;
      this.#db = new Database(path);
      RETAINED.add(this.#db);
      this.#db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;');
      this.#db.exec(SCHEMA);
    } catch (error) {
      throw storeIoError(error, path, 'cannot open the jobs database');
    }
  }

  close(): void {
    this.#db.close();
    RETAINED.add(this.#statements);
  }

  /**
   * A prepared statement, made once per SQL text and kept as long as the database: better-sqlite3 12 on Node 24
   * aborts the process when the garbage collector frees a statement at the wrong moment (its destructor asks for
   * the current Node environment, which a collection outside any context does not have). Statements that are
   * never freed before the process ends never hit it; the SQL texts here are a small fixed set.
   */
  #stmt(sql: string): BetterSqlite3.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  /** `PRAGMA integrity_check`: "ok", or what is wrong. */
  integrityCheck(): string {
    return (
      (this.#stmt('PRAGMA integrity_check').all() as Array<{ integrity_check: string }>)
        .map((row) => row.integrity_check)
        .join('; ') || 'no answer'
    );
  }

  create(job: NewJob, now: number): Job {
    const insert = this.#db.transaction(() => {
      const { lastInsertRowid } = this.#stmt(
        'INSERT INTO jobs (owner, label, results, seconds_to_live, state, time_submitted) VALUES (?, ?, ?, ?, ?, ?)',
      ).run(job.owner, job.label ?? null, JSON.stringify(job.results), job.secondsToLive, JOB_STATES.wait, now);
      const addRef = this.#stmt(
        'INSERT INTO job_refs (job_id, idx, ref, version, digest, state) VALUES (?, ?, ?, ?, ?, ?)',
      );
      job.refs.forEach((ref, index) => {
        addRef.run(lastInsertRowid, index, ref.ref, ref.version, ref.digest, JOB_STATES.wait);
      });
      return Number(lastInsertRowid);
    });
    return this.get(insert())!;
  }

  get(id: number): Job | undefined {
    const row = this.#stmt('SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
    return row ? this.#toJob(row) : undefined;
  }

  /** One page of jobs and how many match in all. */
  list(query: JobQuery = {}): { items: Job[]; total: number } {
    const where: string[] = [];
    const args: unknown[] = [];
    if (query.state !== undefined) {
      where.push('state = ?');
      args.push(query.state);
    }
    if (query.owner !== undefined) {
      where.push('owner = ?');
      args.push(query.owner);
    }
    if (query.label !== undefined) {
      where.push('label = ?');
      args.push(query.label);
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const perPage = Math.min(Math.max(query.perPage ?? 20, 1), 100);
    const page = Math.max(query.page ?? 1, 1);
    const order = query.orderBy === 'id' ? 'ASC' : 'DESC';
    const total = (this.#stmt(`SELECT count(*) AS n FROM jobs ${clause}`).get(...args) as { n: number }).n;
    const rows = this.#stmt(`SELECT * FROM jobs ${clause} ORDER BY id ${order} LIMIT ? OFFSET ?`).all(
      ...args,
      perPage,
      (page - 1) * perPage,
    ) as Row[];
    return { items: rows.map((row) => this.#toJob(row)), total };
  }

  /**
   * Moves a job to `to`, setting the times that go with it: started (fetching), done and its expiry, removed and by
   * whom, the reason (failed); back to wait (renewal) clears them. A move the model forbids is JOB_CONFLICT.
   */
  move(
    id: number,
    to: JobState,
    now: number,
    extra: { reason?: string; code?: string; removedBy?: string; secondsToLive?: number } = {},
  ): Job {
    const job = this.#require(id);
    if (!canMove(job.state, to)) {
      throw new TemplatesError(
        'JOB_CONFLICT',
        `job ${id} is ${stateName(job.state)} and cannot become ${stateName(to)}`,
        { hint: "see the job's state_name" },
      );
    }
    const ttl = extra.secondsToLive ?? job.secondsToLive;
    const set: Record<string, unknown> = { state: to, seconds_to_live: ttl };
    if (to === JOB_STATES.wait)
      Object.assign(set, {
        state_reason: null,
        state_code: null,
        time_started: null,
        time_done: null,
        time_to_expire: null,
        time_removed: null,
        removed_by: null,
        progress_bytes: 0,
        progress_total: null,
      });
    if (to === JOB_STATES.fetching) Object.assign(set, { time_started: now, state_reason: null });
    if (to === JOB_STATES.done) Object.assign(set, { time_done: now, time_to_expire: now + ttl * 1000 });
    if (to === JOB_STATES.removed)
      Object.assign(set, {
        time_removed: now,
        removed_by: extra.removedBy ?? null,
        state_reason: extra.reason ?? null,
      });
    if (to === JOB_STATES.failed)
      Object.assign(set, { state_reason: extra.reason ?? null, state_code: extra.code ?? null, time_done: now });
    const columns = Object.keys(set);
    this.#db.transaction(() => {
      this.#stmt(`UPDATE jobs SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`).run(
        ...columns.map((c) => set[c]),
        id,
      );
      if (to === JOB_STATES.wait) this.#stmt('UPDATE job_refs SET state = ? WHERE job_id = ?').run(JOB_STATES.wait, id);
    })();
    return this.get(id)!;
  }

  /** A done job's expiry moves to now + seconds (renewal of a live job). */
  extend(id: number, secondsToLive: number, now: number): Job {
    const job = this.#require(id);
    if (job.state !== JOB_STATES.done)
      throw new TemplatesError('JOB_CONFLICT', `job ${id} is ${stateName(job.state)}; only a done job's expiry moves`);
    this.#stmt('UPDATE jobs SET seconds_to_live = ?, time_to_expire = ? WHERE id = ?').run(
      secondsToLive,
      now + secondsToLive * 1000,
      id,
    );
    return this.get(id)!;
  }

  setRefState(id: number, index: number, state: JobState): void {
    this.#stmt('UPDATE job_refs SET state = ? WHERE job_id = ? AND idx = ?').run(state, id, index);
  }

  setProgress(id: number, bytes: number, total: number | null): void {
    this.#stmt('UPDATE jobs SET progress_bytes = ?, progress_total = ? WHERE id = ?').run(bytes, total, id);
  }

  /** The oldest waiting jobs, up to `limit`. */
  waiting(limit: number): Job[] {
    return (
      this.#stmt('SELECT * FROM jobs WHERE state = ? ORDER BY id ASC LIMIT ?').all(JOB_STATES.wait, limit) as Row[]
    ).map((row) => this.#toJob(row));
  }

  /** Done jobs whose time to expire has come. */
  expired(now: number): Job[] {
    return (
      this.#stmt('SELECT * FROM jobs WHERE state = ? AND time_to_expire <= ? ORDER BY id').all(
        JOB_STATES.done,
        now,
      ) as Row[]
    ).map((row) => this.#toJob(row));
  }

  /** Pinned versions (`repo:template:version`) that a waiting, fetching or done job holds. */
  heldVersions(): Set<string> {
    const rows = this.#stmt(
      'SELECT DISTINCT r.version AS version FROM job_refs r JOIN jobs j ON j.id = r.job_id WHERE j.state IN (?, ?, ?)',
    ).all(JOB_STATES.wait, JOB_STATES.fetching, JOB_STATES.done) as Array<{ version: string }>;
    return new Set(rows.map((row) => row.version));
  }

  /** Pinned versions of jobs removed or failed since `since` (ms): what they released, freed unless something else holds it. */
  releasedVersions(since: number): Set<string> {
    const rows = this.#stmt(
      'SELECT DISTINCT r.version AS version FROM job_refs r JOIN jobs j ON j.id = r.job_id WHERE j.state IN (?, ?) AND coalesce(j.time_removed, j.time_done, j.time_submitted) >= ?',
    ).all(JOB_STATES.removed, JOB_STATES.failed, since) as Array<{ version: string }>;
    return new Set(rows.map((row) => row.version));
  }

  /** How many jobs are in each state, by state name (every state present, 0 when none). */
  countByState(): Record<JobStateName, number> {
    const counts = Object.fromEntries(Object.keys(JOB_STATES).map((name) => [name, 0])) as Record<JobStateName, number>;
    for (const row of this.#stmt('SELECT state, count(*) AS n FROM jobs GROUP BY state').all() as Array<{
      state: JobState;
      n: number;
    }>)
      counts[stateName(row.state)] = row.n;
    return counts;
  }

  /** Ids of jobs that are not live (removed or failed) among `ids`. */
  notLive(ids: number[]): number[] {
    return ids.filter((id) => {
      const row = this.#stmt('SELECT state FROM jobs WHERE id = ?').get(id) as { state: JobState } | undefined;
      return !row || row.state === JOB_STATES.removed || row.state === JOB_STATES.failed;
    });
  }

  /**
   * After a restart: a job left fetching (the server was killed) waits again, so it is fetched again from the
   * start; nothing of it was visible in the store. Returns the ids moved.
   */
  recover(): number[] {
    const ids = (
      this.#stmt('SELECT id FROM jobs WHERE state = ?').all(JOB_STATES.fetching) as Array<{ id: number }>
    ).map((row) => row.id);
    this.#stmt(
      'UPDATE jobs SET state = ?, state_reason = ?, time_started = NULL, progress_bytes = 0 WHERE state = ?',
    ).run(JOB_STATES.wait, 'the server stopped while fetching; queued again', JOB_STATES.fetching);
    return ids;
  }

  #require(id: number): Job {
    const job = this.get(id);
    if (!job) throw new TemplatesError('JOB_NOT_FOUND', `no job ${id}`, { hint: 'see GET /api/1/jobs' });
    return job;
  }

  #toJob(row: Row): Job {
    const refs = (this.#stmt('SELECT * FROM job_refs WHERE job_id = ? ORDER BY idx').all(row.id) as Row[]).map(
      (ref) => ({
        ref: String(ref.ref),
        version: String(ref.version),
        digest: (ref.digest as string | null) ?? null,
        state: Number(ref.state) as JobState,
      }),
    );
    const num = (value: unknown) => (value === null || value === undefined ? null : Number(value));
    return {
      id: Number(row.id),
      owner: String(row.owner),
      label: (row.label as string | null) ?? null,
      results: JSON.parse(String(row.results)) as string[],
      secondsToLive: Number(row.seconds_to_live),
      state: Number(row.state) as JobState,
      stateReason: (row.state_reason as string | null) ?? null,
      stateCode: (row.state_code as string | null) ?? null,
      refs,
      timeSubmitted: Number(row.time_submitted),
      timeStarted: num(row.time_started),
      timeDone: num(row.time_done),
      timeToExpire: num(row.time_to_expire),
      timeRemoved: num(row.time_removed),
      removedBy: (row.removed_by as string | null) ?? null,
      progress: { bytes: Number(row.progress_bytes), total: num(row.progress_total) },
    };
  }
}

// The jobs' database on a real SQLite file: creation, queries, state moves and their times, recovery, and a kill -9 mid-write.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobDatabase } from '../../src/jobs/database.js';
import { JOB_STATES, jobJson, parseState } from '../../src/jobs/model.js';

let dir: string;
let db: JobDatabase;
const T0 = Date.parse('2026-11-21T10:00:00Z');
const refs = [
  { ref: 'r:a', version: 'r:a:v2', digest: 'sha1:aa' },
  { ref: 'r:b:v1', version: 'r:b:v1', digest: null },
];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'templates-jobs-'));
  db = new JobDatabase(join(dir, 'jobs.sqlite'));
});
afterEach(async () => {
  db.close();
  await rm(dir, { recursive: true, force: true });
});

describe('JobDatabase', () => {
  it('creates jobs that wait, with their pinned references, and shows them as the API does', () => {
    const job = db.create({ owner: 'alice', label: 'ci-42', results: ['raw'], secondsToLive: 60, refs }, T0);
    expect(job).toMatchObject({ id: 1, owner: 'alice', state: JOB_STATES.wait, timeSubmitted: T0, timeStarted: null });
    expect(job.refs.map((r) => [r.version, r.digest, r.state])).toEqual([
      ['r:a:v2', 'sha1:aa', 0],
      ['r:b:v1', null, 0],
    ]);
    expect(jobJson(job, null)).toMatchObject({
      state: 0,
      state_name: 'wait',
      time_submitted: '2026-11-21T10:00:00.000Z',
      time_done: null,
      seconds_to_live: 60,
    });
  });

  it('lists by state, owner and label, newest first unless asked, one page at a time', () => {
    for (let i = 0; i < 25; i++)
      db.create(
        { owner: i % 2 ? 'bob' : 'alice', label: i < 5 ? 'first' : null, results: ['raw'], secondsToLive: 60, refs },
        T0 + i,
      );
    db.move(3, JOB_STATES.fetching, T0);
    const page = db.list({ perPage: 10, page: 2 });
    expect(page.total).toBe(25);
    expect(page.items.map((j) => j.id)).toEqual([15, 14, 13, 12, 11, 10, 9, 8, 7, 6]);
    expect(db.list({ orderBy: 'id', perPage: 3 }).items.map((j) => j.id)).toEqual([1, 2, 3]);
    expect(db.list({ owner: 'bob' }).total).toBe(12);
    expect(db.list({ label: 'first', owner: 'alice' }).items.map((j) => j.id)).toEqual([5, 3, 1]);
    expect(db.list({ state: parseState('fetching')! }).items.map((j) => j.id)).toEqual([3]);
    expect(parseState('1')).toBe(1);
    expect(parseState('nope')).toBeUndefined();
  });

  it('moves through wait, fetching, done, removed with their times; forbidden moves and unknown jobs are typed errors', () => {
    const { id } = db.create({ owner: 'alice', results: ['raw'], secondsToLive: 3, refs }, T0);
    expect(db.move(id, JOB_STATES.fetching, T0 + 1000)).toMatchObject({ state: 1, timeStarted: T0 + 1000 });
    expect(db.move(id, JOB_STATES.done, T0 + 2000)).toMatchObject({
      state: 2,
      timeDone: T0 + 2000,
      timeToExpire: T0 + 5000,
    });
    expect(db.expired(T0 + 4999)).toEqual([]);
    expect(db.expired(T0 + 5000).map((j) => j.id)).toEqual([id]);
    expect(db.heldVersions()).toEqual(new Set(['r:a:v2', 'r:b:v1']));
    expect(db.extend(id, 10, T0 + 3000).timeToExpire).toBe(T0 + 13_000);
    expect(db.move(id, JOB_STATES.removed, T0 + 14_000, { removedBy: 'expiry' })).toMatchObject({
      state: 3,
      timeRemoved: T0 + 14_000,
      removedBy: 'expiry',
    });
    expect(db.heldVersions().size).toBe(0);
    expect(() => db.move(id, JOB_STATES.done, T0)).toThrow(expect.objectContaining({ code: 'JOB_CONFLICT' }));
    expect(() => db.extend(id, 10, T0)).toThrow(expect.objectContaining({ code: 'JOB_CONFLICT' }));
    expect(() => db.move(99, JOB_STATES.fetching, T0)).toThrow(expect.objectContaining({ code: 'JOB_NOT_FOUND' }));
    // Renewing a removed job queues it again for the same pins, with its times cleared.
    expect(db.move(id, JOB_STATES.wait, T0 + 20_000, { secondsToLive: 30 })).toMatchObject({
      state: 0,
      secondsToLive: 30,
      timeStarted: null,
      timeDone: null,
      timeRemoved: null,
      removedBy: null,
    });
    expect(db.waiting(10).map((j) => j.id)).toEqual([id]);
  });

  it('after a restart, queues again the jobs that were fetching, with a reason', () => {
    const a = db.create({ owner: 'alice', results: ['raw'], secondsToLive: 60, refs }, T0);
    const b = db.create({ owner: 'alice', results: ['raw'], secondsToLive: 60, refs }, T0);
    db.move(a.id, JOB_STATES.fetching, T0);
    db.setProgress(a.id, 100, 1000);
    db.close();
    db = new JobDatabase(join(dir, 'jobs.sqlite'));
    expect(db.recover()).toEqual([a.id]);
    expect(db.get(a.id)).toMatchObject({
      state: 0,
      stateReason: expect.stringContaining('queued again'),
      progress: { bytes: 0, total: 1000 },
    });
    expect(db.get(b.id)?.state).toBe(0);
    expect(db.recover()).toEqual([]);
  });

  it('survives kill -9 in the middle of writes: integrity_check is ok and every job is whole', async () => {
    db.close();
    const module = resolve(import.meta.dirname, '../../dist/jobs/database.js');
    const script = `
      const { JobDatabase } = await import(${JSON.stringify(module)});
      const db = new JobDatabase(${JSON.stringify(join(dir, 'jobs.sqlite'))});
      const refs = ${JSON.stringify(refs)};
      console.log('ready');
      for (let i = 0; ; i++) {
        const job = db.create({ owner: 'w', results: ['raw'], secondsToLive: 60, refs }, Date.now());
        db.move(job.id, 1, Date.now());
        db.setProgress(job.id, i, null);
      }`;
    const writer = execa(process.execPath, ['--input-type=module', '-e', script], { reject: false, buffer: false });
    await new Promise<void>((done) => writer.stdout!.once('data', () => done()));
    await new Promise((done) => setTimeout(done, 300));
    writer.kill('SIGKILL');
    await writer;
    db = new JobDatabase(join(dir, 'jobs.sqlite'));
    expect(db.integrityCheck()).toBe('ok');
    const all = db.list({ perPage: 100 });
    expect(all.total).toBeGreaterThan(0);
    for (const job of all.items) expect(job.refs).toHaveLength(2);
    expect(db.recover().length).toBeLessThanOrEqual(all.total);
    expect(db.list({ state: JOB_STATES.fetching }).total).toBe(0);
  });
});

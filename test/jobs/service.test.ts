// The job service against real nginx and a real store: lifecycle and expiry, shared downloads, renewal, pins, cancellation.
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createContext, loadRepositories, openStore, useTemplate } from '../../src/index.js';
import { JobDatabase } from '../../src/jobs/database.js';
import { JOB_STATES, type Job } from '../../src/jobs/model.js';
import { createJobService, type JobService } from '../../src/jobs/service.js';
import { TOOL_PATH, digestOf, makeDisk, publishImage } from '../helpers/images.js';
import { withoutLockFiles, workspace, type Workspace } from '../helpers/env.js';

let ws: Workspace;
let db: JobDatabase;
let service: JobService | undefined;
let clock = 0;
const now = () => Date.now() + clock;

beforeEach(async () => {
  ws = await workspace();
  clock = 0;
});
afterEach(async () => {
  service?.close();
  db?.close();
  await ws.cleanup();
});

async function setup(names: string[], options: { slow?: boolean } = {}) {
  const versions: Record<string, unknown> = {};
  for (const name of names) {
    const sha1 = (
      await publishImage(
        ws.www,
        `${name}/v1`,
        await makeDisk(join(ws.dir, `${name}.raw`), {
          sizeMiB: options.slow ? 16 : 2,
          dataKiB: options.slow ? 6 * 1024 : 64,
          label: name,
        }),
      )
    ).sha1;
    versions[name] = { versions: { v1: { source: 'web', handle: `${name}/v1`, timestamp: 1, hash: `sha1:${sha1}` } } };
  }
  const baseurl = options.slow ? ws.baseurl.replace(/\/(ws-[^/]+)\/$/, '/slow/$1/') : ws.baseurl;
  const repoFile = await ws.writeRepo('r', {
    name: 'r',
    sources: { web: { type: 'http', args: { baseurl } } },
    templates: versions,
  });
  const context = createContext({ env: { PATH: TOOL_PATH, HOME: ws.dir }, now });
  const store = await openStore({ root: ws.store, lockStaleMs: 2000 });
  let repositories = await loadRepositories({ context, store, repos: [repoFile] });
  db = new JobDatabase(join(ws.store, '.serve', 'jobs.sqlite'));
  service = createJobService({ store, context, db, repositories: () => repositories, workers: 2 });
  return {
    store,
    repoFile,
    reload: async () => {
      repositories = await loadRepositories({ context, store, repos: [repoFile] });
    },
  };
}

async function until(id: number, state: number): Promise<Job> {
  for (let i = 0; i < 600; i++) {
    const job = db.get(id)!;
    if (job.state === state) return job;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`job ${id} never reached state ${state}: ${JSON.stringify(db.get(id))}`);
}

describe('job service', () => {
  it('takes a job through wait, fetching, done and, once expired, removed; the entry goes unless another job or a dependent holds it', async () => {
    const { store } = await setup(['a', 'b']);
    const seen: string[] = [];
    service!.events.on('job', (job) => seen.push(`${job.id}:${job.state}`));
    const first = service!.submit({ refs: ['r:a', 'r:b:v1'], secondsToLive: 3 }, 'alice');
    expect(first.refs.map((r) => r.version)).toEqual(['r:a:v1', 'r:b:v1']);
    expect(first.refs[0]!.digest).toMatch(/^sha1:/);
    const done = await until(first.id, JOB_STATES.done);
    expect(done.timeToExpire! - done.timeDone!).toBe(3000);
    expect(seen).toEqual(expect.arrayContaining([`${first.id}:0`, `${first.id}:1`, `${first.id}:2`]));
    const second = service!.submit({ refs: ['r:b'], secondsToLive: 3600 }, 'bob');
    await until(second.id, JOB_STATES.done);
    await writeFile(join(ws.dir, 'vm.qcow2'), 'a dependent');
    await useTemplate('r:a:v1', { store, by: join(ws.dir, 'vm.qcow2'), now });
    clock = 4000;
    await service!.sweep();
    expect(db.get(first.id)).toMatchObject({ state: JOB_STATES.removed, removedBy: 'expiry' });
    // r:a is held by a dependent, r:b by bob's live job: both stay.
    expect((await readdir(ws.store)).filter((n) => /^r:[ab]:v1$/.test(n))).toEqual(['r:a:v1', 'r:b:v1']);
    await useTemplate('r:a:v1', { store, drop: join(ws.dir, 'vm.qcow2'), now });
    await service!.cancel(second.id, 'bob', false);
    await service!.sweep();
    expect(withoutLockFiles(await readdir(ws.store)).filter((n) => n.startsWith('r:'))).toEqual([]);
  });

  it('runs 20 jobs for 5 templates with one download per image', async () => {
    await setup(['t1', 't2', 't3', 't4', 't5']);
    const jobs = Array.from({ length: 20 }, (_, i) =>
      service!.submit({ refs: [`r:t${(i % 5) + 1}`, `r:t${((i + 1) % 5) + 1}`], secondsToLive: 60 }, 'ci'),
    );
    for (const job of jobs) await until(job.id, JOB_STATES.done);
    for (let t = 1; t <= 5; t++)
      expect((await ws.requests(`/t${t}/v1.xz`)).filter((l) => l.startsWith('GET ')).length).toBe(1);
  });

  it("renews: a done job's expiry moves; a removed one is fetched again with the same digest; a changed upstream fails naming the digest", async () => {
    const { repoFile, reload } = await setup(['a']);
    const job = service!.submit({ refs: ['r:a'], secondsToLive: 5 }, 'alice');
    const done = await until(job.id, JOB_STATES.done);
    clock = 2000;
    const before = now();
    const expiry = service!.renew(job.id, 60, 'alice', false).timeToExpire!;
    expect(expiry).toBeGreaterThanOrEqual(before + 60_000);
    expect(expiry).toBeLessThanOrEqual(now() + 60_000);
    expect(() => service!.renew(job.id, 60, 'mallory', false)).toThrow(
      expect.objectContaining({ code: 'JOB_FORBIDDEN' }),
    );
    clock = 120_000;
    await service!.sweep();
    expect(db.get(job.id)!.state).toBe(JOB_STATES.removed);
    expect((await readdir(ws.store)).includes('r:a:v1')).toBe(false);
    service!.renew(job.id, 60, 'alice', false);
    const again = await until(job.id, JOB_STATES.done);
    expect(again.refs[0]!.digest).toBe(done.refs[0]!.digest);
    expect(await digestOf(join(ws.store, 'r:a:v1'))).toBe(await digestOf(join(ws.dir, 'a.raw')));
    // Upstream republishes v1 with other content: the pin no longer matches.
    const other = await makeDisk(join(ws.dir, 'other.raw'), { sizeMiB: 2, dataKiB: 64, label: 'other' });
    const { sha1 } = await publishImage(ws.www, 'a/v1', other);
    await writeFile(
      repoFile,
      (await (await import('node:fs/promises')).readFile(repoFile, 'utf8')).replace(
        /sha1:[0-9a-f]{40}/,
        `sha1:${sha1}`,
      ),
    );
    await reload();
    await service!.cancel(job.id, 'alice', false);
    clock = 400_000;
    await service!.sweep();
    service!.renew(job.id, 60, 'alice', false);
    const failed = await until(job.id, JOB_STATES.failed);
    expect(failed.stateReason).toContain(done.refs[0]!.digest!);
    expect(failed.stateReason).toContain(sha1);
  });

  it("cancels a fetching job (nothing partial stays visible) and refuses another user's cancel", async () => {
    await setup(['big'], { slow: true });
    const job = service!.submit({ refs: ['r:big'], secondsToLive: 60 }, 'alice');
    await until(job.id, JOB_STATES.fetching);
    await expect(service!.cancel(job.id, 'bob', false)).rejects.toMatchObject({ code: 'JOB_FORBIDDEN' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await service!.cancel(job.id, 'alice', false)).toMatchObject({
      state: JOB_STATES.failed,
      stateReason: 'cancelled by alice',
    });
    await service!.idle();
    expect(withoutLockFiles(await readdir(ws.store)).filter((n) => n.startsWith('r:big'))).toEqual([]);
  });

  it('refuses bad requests with codes and queues nothing', async () => {
    await setup(['a']);
    expect(() => service!.submit({ refs: ['r:nope'], secondsToLive: 60 }, 'a')).toThrow(
      expect.objectContaining({ code: 'TEMPLATE_NOT_FOUND' }),
    );
    expect(() => service!.submit({ refs: ['bad ref'], secondsToLive: 60 }, 'a')).toThrow(
      expect.objectContaining({ code: 'BAD_REFERENCE' }),
    );
    expect(() => service!.submit({ refs: [], secondsToLive: 60 }, 'a')).toThrow(
      expect.objectContaining({ code: 'USAGE' }),
    );
    expect(() => service!.submit({ refs: ['r:a'], secondsToLive: 10 ** 9 }, 'a')).toThrow(
      expect.objectContaining({ code: 'USAGE' }),
    );
    expect(db.list().total).toBe(0);
  });
});

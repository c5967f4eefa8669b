// A templates serve killed with SIGKILL while jobs fetch: restarted, every job ends done or failed, the database is sound, nothing partial.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJobClient } from '../../src/api/serve.js';
import { JobDatabase } from '../../src/jobs/database.js';
import { runCli, workspace, type Workspace } from '../helpers/env.js';
import { makeDisk, publishImage } from '../helpers/images.js';
import { startServe, type Served } from '../helpers/serve.js';

let ws: Workspace;
let repo: string;
let server: Served | undefined;

beforeAll(async () => {
  ws = await workspace();
  const versions: Record<string, unknown> = {};
  for (const name of ['big1', 'big2', 'big3']) {
    const { sha1 } = await publishImage(
      ws.www,
      `${name}/v1`,
      await makeDisk(join(ws.dir, `${name}.raw`), { sizeMiB: 16, dataKiB: 6 * 1024, label: name }),
    );
    versions[name] = { versions: { v1: { source: 'web', handle: `${name}/v1`, timestamp: 1, hash: `sha1:${sha1}` } } };
  }
  // Through nginx's /slow/ location (2 MB/s): the fetches are still running when the server is killed.
  const baseurl = ws.baseurl.replace(/\/(ws-[^/]+)\/$/, '/slow/$1/');
  repo = await ws.writeRepo('up', {
    name: 'up',
    sources: { web: { type: 'http', args: { baseurl } } },
    templates: versions,
  });
});

afterAll(async () => {
  await server?.stop('SIGKILL');
  await ws?.cleanup();
});

describe('templates serve killed mid-job', () => {
  it('restarts with the killed jobs fetching again, ends every job done, and leaves a sound database and no partial entry', async () => {
    const args = ['--store', ws.store, '--repo', repo, '--workers', '2'];
    server = await startServe(args, { HOME: ws.dir });
    const client = createJobClient({ url: server.url });
    const jobs = await Promise.all(
      ['up:big1', 'up:big2', 'up:big3'].map((ref) => client.create({ refs: [ref], secondsToLive: 600 })),
    );
    for (let i = 0; i < 100 && (await client.list({ state: 'fetching' })).meta.total < 2; i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await client.list({ state: 'fetching' })).meta.total).toBe(2);
    expect(await server.stop('SIGKILL')).not.toBe(0);
    // Nothing the killed fetches wrote is visible as an entry.
    expect((await readdir(ws.store)).filter((name) => /^up:big\d:v1$/.test(name))).toEqual([]);

    server = await startServe(args, { HOME: ws.dir });
    const again = createJobClient({ url: server.url });
    const ended = await Promise.all(jobs.map((job) => again.wait(job.id, { timeout: 90_000 })));
    expect(ended.map((job) => job.state_name)).toEqual(['done', 'done', 'done']);
    expect(
      server.logs().filter((line) => line.kind === 'job' && line.state === 'fetching').length,
    ).toBeGreaterThanOrEqual(3);
    await server.stop();
    server = undefined;

    const db = new JobDatabase(join(ws.store, '.serve', 'jobs.sqlite'));
    try {
      expect(db.integrityCheck()).toBe('ok');
      expect(db.list().total).toBe(3);
    } finally {
      db.close();
    }
    const verify = await runCli(['verify', '--store', ws.store], { HOME: ws.dir });
    expect(verify.exitCode, verify.stderr).toBe(0);
  });
});

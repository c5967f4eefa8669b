// Store management through the CLI on a store with two repositories and a lago-inherited entry: list, info, verify, use, rm, du, prune.
import { copyFile, mkdir, open, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/index.js';
import { withEntryLock } from '../../src/store/lock.js';
import { CLI, lagoRepo, runCli, withoutLockFiles, workspace, type Workspace } from '../helpers/env.js';
import { TOOL_PATH, digestOf, makeDisk, publishImage } from '../helpers/images.js';

let ws: Workspace;
let env: Record<string, string>;
let disks: { a: string; b: string; c: string };
const json = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
const cli = (args: string[], extra: Record<string, string> = {}) => runCli(args, { ...env, ...extra });

/** A store entry as lago left it: image, SHA-1 .hash and .metadata, no record. */
async function lagoEntry(ref: string, image: string, hash?: string) {
  await copyFile(image, join(ws.store, ref));
  await writeFile(join(ws.store, `${ref}.hash`), hash ?? (await digestOf(image)));
  await writeFile(join(ws.store, `${ref}.metadata`), JSON.stringify({ distro: 'lago' }));
}

beforeAll(async () => {
  ws = await workspace();
  disks = {
    a: await makeDisk(join(ws.dir, 'a.raw'), { sizeMiB: 8, dataKiB: 512, label: 'a' }),
    b: await makeDisk(join(ws.dir, 'b.raw'), { sizeMiB: 8, dataKiB: 512, label: 'b' }),
    c: await makeDisk(join(ws.dir, 'c.raw'), { sizeMiB: 8, dataKiB: 512, label: 'c' }),
  };
  await publishImage(ws.www, 'tpl/v1.raw', disks.a);
  await publishImage(ws.www, 'tpl/v2.raw', disks.b);
  await publishImage(ws.www, 'other/v1.raw', disks.c, { xz: false });
  const alpha = await ws.writeRepo(
    'alpha',
    lagoRepo('alpha', ws, {
      tpl: {
        v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 100 },
        v2: { source: 'web', handle: 'tpl/v2.raw', timestamp: 200 },
        broken: { source: 'nowhere', handle: 'x', timestamp: 1 },
      },
    }),
  );
  const beta = await ws.writeRepo(
    'beta',
    lagoRepo('beta', ws, { other: { v1: { source: 'disk', handle: 'other/v1.raw', timestamp: 50 } } }),
  );
  env = { TEMPLATES_STORE: ws.store, TEMPLATES_REPOS: `${alpha}:${beta}`, XDG_CONFIG_HOME: ws.dir };
  expect((await cli(['fetch', '-q', 'alpha:tpl:v1', 'alpha:tpl:v2', 'beta:other'])).exitCode).toBe(0);
  await lagoEntry('old:legacy:v1', disks.c);
});
afterAll(async () => {
  await ws.cleanup();
});

describe('list and info', () => {
  it('lists every version newest first, marks the stored ones and shows broken entries with their reason', async () => {
    const result = await cli(['list', '--json']);
    expect(result.exitCode).toBe(0);
    expect(json(result.stdout).map((v) => [v.ref, v.stored, v.broken === undefined ? null : 'broken'])).toEqual([
      ['alpha:tpl:v2', true, null],
      ['alpha:tpl:v1', true, null],
      ['alpha:tpl:broken', false, 'broken'],
      ['beta:other:v1', true, null],
    ]);
    const only = json((await cli(['list', 'beta', '--json'])).stdout);
    expect(only.map((v) => v.ref)).toEqual(['beta:other:v1']);
    expect((await cli(['list'])).stdout).toContain('alpha:tpl:broken  BROKEN: ');
  });

  it('lists the store: sizes (sparse), dates, source; lago entries have no record', async () => {
    const rows = json((await cli(['list', '--stored', '--json'])).stdout);
    expect(rows.map((row) => row.ref)).toEqual(['alpha:tpl:v1', 'alpha:tpl:v2', 'beta:other:v1', 'old:legacy:v1']);
    const v1 = rows[0]!;
    expect(v1).toMatchObject({
      size: 8 * 2 ** 20,
      recorded: true,
      source: `${ws.baseurl}tpl/v1.raw.xz`,
      dependents: [],
    });
    expect(v1.disk_size as number).toBeLessThan(v1.size as number);
    expect(Date.parse(v1.lastUsed as string)).toBeGreaterThanOrEqual(Date.parse(v1.fetchedAt as string));
    expect(rows[3]).toMatchObject({ ref: 'old:legacy:v1', recorded: false, source: null });
  });

  it('info shows the resolution, metadata and stored state; a stored entry of an unconfigured repository too', async () => {
    const info = json((await cli(['info', 'alpha:tpl', '--json'])).stdout)[0]!;
    expect(info).toMatchObject({
      ref: 'alpha:tpl:v2',
      resolution: {
        version: 'v2',
        timestamp: 200,
        hash: await digestOf(disks.b),
        urls: [`${ws.baseurl}tpl/v2.raw.xz`, `${ws.baseurl}tpl/v2.raw`],
      },
      metadata: { distro: 'test', arch: 'x86_64' },
      stored: {
        path: join(ws.store, 'alpha:tpl:v2'),
        record: { verified: { of: 'image' }, stored: { digest: `sha1:${await digestOf(disks.b)}` } },
      },
    });
    const legacy = json((await cli(['info', 'old:legacy:v1', '--json'])).stdout)[0]!;
    expect(legacy).toMatchObject({
      ref: 'old:legacy:v1',
      resolution: null,
      metadata: { distro: 'lago' },
      stored: { record: null },
    });
    expect((await cli(['info', 'alpha:nope'])).exitCode).toBe(3);
  });
});

describe('verify', () => {
  it('reports fresh entries ok and lago ones unverifiable, adopts them, and catches a flipped byte', async () => {
    const first = await cli(['verify', '--json']);
    expect(first.exitCode).toBe(0);
    expect(Object.fromEntries(json(first.stdout).map((r) => [r.ref, r.status]))).toEqual({
      'alpha:tpl:v1': 'ok',
      'alpha:tpl:v2': 'ok',
      'beta:other:v1': 'ok',
      'old:legacy:v1': 'unverifiable',
    });
    const adopted = json((await cli(['verify', '--adopt', 'old:legacy:v1', '--json'])).stdout)[0]!;
    expect(adopted).toMatchObject({ status: 'adopted', actual: `sha256:${await digestOf(disks.c, 'sha256')}` });
    expect(json((await cli(['verify', 'old:legacy:v1', '--json'])).stdout)[0]).toMatchObject({ status: 'ok' });

    // Flip one byte inside the data of a stored image.
    const handle = await open(join(ws.store, 'beta:other:v1'), 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 1024);
    await handle.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, 1024);
    await handle.close();
    const corrupt = await cli(['verify', 'beta:other:v1', '--json']);
    expect(corrupt.exitCode).toBe(11);
    expect(json(corrupt.stdout)[0]).toMatchObject({ status: 'corrupt', expected: `sha1:${await digestOf(disks.c)}` });
    const removed = await cli(['verify', 'beta:other:v1', '--remove-corrupt']);
    expect(removed.exitCode).toBe(11);
    expect(withoutLockFiles(await readdir(ws.store)).filter((name) => name.startsWith('beta:'))).toEqual([]);
    // Fetched again, it is whole.
    expect((await cli(['fetch', '-q', 'beta:other:v1'])).exitCode).toBe(0);
    expect((await cli(['verify', 'beta:other:v1'])).exitCode).toBe(0);
  });

  it('a lago entry whose .hash disagrees is corrupt, not adopted; a missing sidecar is reported', async () => {
    await lagoEntry('old:bad:v1', disks.a, await digestOf(disks.b));
    const bad = await cli(['verify', '--adopt', 'old:bad:v1', '--json']);
    expect(bad.exitCode).toBe(11);
    expect(json(bad.stdout)[0]).toMatchObject({ status: 'corrupt', expected: `sha1:${await digestOf(disks.b)}` });
    await cli(['rm', 'old:bad:v1']);
    await execa('rm', [join(ws.store, 'alpha:tpl:v1.metadata')]);
    const missing = await cli(['verify', 'alpha:tpl:v1', '--json']);
    expect(missing.exitCode).toBe(11);
    expect(json(missing.stdout)[0]).toMatchObject({ status: 'missing-sidecar', missing: ['alpha:tpl:v1.metadata'] });
    await cli(['rm', 'alpha:tpl:v1']);
    expect((await cli(['fetch', '-q', 'alpha:tpl:v1'])).exitCode).toBe(0);
  });
});

describe('verify of a compressed fast-path entry', () => {
  it('a wrong published .hash is recorded unchecked and verify says unconfirmed, not corrupt', async () => {
    const digests = await publishImage(ws.www, 'fast/v1.raw', disks.a, { hashText: await digestOf(disks.b) });
    const repo = await ws.writeRepo(
      'fast',
      lagoRepo('fast', ws, {
        tpl: {
          v1: { source: 'web', handle: 'fast/v1.raw', timestamp: 1, compressed_hash: `sha256:${digests.xzSha256}` },
        },
      }),
    );
    const store = join(ws.dir, 'store-fast');
    expect((await cli(['fetch', '-q', 'fast:tpl:v1', '--repo', repo, '--store', store])).exitCode).toBe(0);
    const record = JSON.parse(await readFile(join(store, 'fast:tpl:v1.record.json'), 'utf8')) as { stored: unknown };
    expect(record.stored).toEqual({ digest: `sha1:${await digestOf(disks.b)}`, checked: false });
    const verified = await cli(['verify', 'fast:tpl:v1', '--store', store, '--json']);
    expect(verified.exitCode).toBe(11);
    expect(json(verified.stdout)[0]).toMatchObject({
      status: 'unconfirmed',
      expected: `sha1:${await digestOf(disks.b)}`,
      actual: `sha1:${await digestOf(disks.a)}`,
    });
  });
});

describe('use, rm and du', () => {
  it('keeps a template with a live dependent, and forgets the dependent once its path is gone', async () => {
    const vm = join(ws.dir, 'vm-disk.qcow2');
    await writeFile(vm, 'backing file: alpha:tpl:v2');
    const used = await cli(['use', 'alpha:tpl:v2', '--by', vm, '--json']);
    expect(json(used.stdout)[0]).toEqual({ ref: 'alpha:tpl:v2', dependents: [vm] });
    const users = JSON.parse(await readFile(join(ws.store, 'alpha:tpl:v2.users'), 'utf8')) as {
      users: Record<string, unknown>;
      last_access: number;
    };
    expect(Object.keys(users.users)).toEqual([vm]);
    expect(typeof users.last_access).toBe('number');
    const refused = await cli(['rm', 'alpha:tpl:v2', '--json']);
    expect(refused.exitCode).toBe(10);
    expect(json(refused.stdout)[0]).toMatchObject({ error: { code: 'ENTRY_IN_USE', path: vm } });
    await execa('rm', [vm]);
    expect(
      json((await cli(['list', '--stored', '--json'])).stdout).find((row) => row.ref === 'alpha:tpl:v2'),
    ).toMatchObject({ dependents: [] });
    expect((await cli(['use', 'alpha:tpl:v2', '--by', join(ws.dir, 'nope')])).exitCode).toBe(3);
  });

  it('du sums apparent and allocated sizes per repository, template and version', async () => {
    const usage = json((await cli(['du', '--json'])).stdout)[0] as {
      total: { size: number; disk_size: number };
      free: number;
      repositories: Array<{
        name: string;
        size: number;
        templates: Array<{ name: string; versions: Array<{ name: string }> }>;
      }>;
    };
    expect(
      usage.repositories.map((r) => [r.name, r.templates.map((t) => [t.name, t.versions.map((v) => v.name)])]),
    ).toEqual([
      ['alpha', [['tpl', ['v1', 'v2']]]],
      ['beta', [['other', ['v1']]]],
      ['old', [['legacy', ['v1']]]],
    ]);
    expect(usage.total.size).toBe(4 * 8 * 2 ** 20);
    expect(usage.repositories[0]!.size).toBe(2 * 8 * 2 ** 20);
    expect(usage.total.disk_size).toBeLessThan(usage.total.size);
    expect(usage.free).toBeGreaterThan(0);
  });

  it('rm removes the image and every sidecar; an unknown entry is NOT_STORED', async () => {
    expect((await cli(['rm', 'old:legacy:v1'])).exitCode).toBe(0);
    expect(withoutLockFiles(await readdir(ws.store)).filter((name) => name.startsWith('old:'))).toEqual([]);
    expect((await cli(['rm', 'old:legacy:v1'])).exitCode).toBe(3);
  });
});

describe('prune', () => {
  const setUse = async (ref: string, daysAgo: number) => {
    const when = new Date(Date.now() - daysAgo * 86_400_000);
    const users = join(ws.store, `${ref}.users`);
    const data = JSON.parse(await readFile(users, 'utf8')) as Record<string, unknown>;
    await writeFile(users, JSON.stringify({ ...data, last_access: Math.floor(when.getTime() / 1000) }));
    await utimes(users, when, when);
    const record = join(ws.store, `${ref}.record.json`);
    const fetched = JSON.parse(await readFile(record, 'utf8')) as { fetchedAt: string };
    await writeFile(record, JSON.stringify({ ...fetched, fetchedAt: when.toISOString() }));
  };

  it('--dry-run lists what --older-than would remove and changes nothing; a dependent keeps its template', async () => {
    await setUse('alpha:tpl:v1', 10);
    await setUse('alpha:tpl:v2', 10);
    const vm = join(ws.dir, 'vm2.qcow2');
    await writeFile(vm, 'x');
    await cli(['use', 'alpha:tpl:v2', '--by', vm]);
    await setUse('alpha:tpl:v2', 10);
    const before = await readdir(ws.store);
    const dry = json((await cli(['prune', '--older-than', '7d', '--dry-run', '--json'])).stdout)[0] as {
      removed: Array<{ ref: string; diskSize: number }>;
      kept: Array<{ ref: string }>;
      freed: number;
    };
    expect(dry.removed.map((r) => r.ref)).toEqual(['alpha:tpl:v1']);
    expect(dry.kept.map((r) => r.ref)).toEqual(['alpha:tpl:v2']);
    expect(dry.freed).toBe(dry.removed[0]!.diskSize);
    expect(await readdir(ws.store)).toEqual(before);
    const real = json((await cli(['prune', '--older-than', '7d', '--json'])).stdout)[0] as {
      removed: Array<{ ref: string }>;
    };
    expect(real.removed.map((r) => r.ref)).toEqual(['alpha:tpl:v1']);
    expect(withoutLockFiles(await readdir(ws.store)).some((name) => name.startsWith('alpha:tpl:v1'))).toBe(false);
    await execa('rm', [vm]);
  });

  it('--keep keeps the newest versions by the repository timestamp; --max-size removes the least recently used', async () => {
    expect((await cli(['fetch', '-q', 'alpha:tpl:v1'])).exitCode).toBe(0);
    // v1 is now the most recently used, but v2 is the newer version.
    const keep = json((await cli(['prune', '--keep', '1', '--json'])).stdout)[0] as { removed: Array<{ ref: string }> };
    expect(keep.removed.map((r) => r.ref)).toEqual(['alpha:tpl:v1']);
    expect((await cli(['fetch', '-q', 'alpha:tpl:v1'])).exitCode).toBe(0);
    await setUse('beta:other:v1', 3);
    await setUse('alpha:tpl:v2', 1);
    const rows = json((await cli(['list', '--stored', '--json'])).stdout);
    const total = rows.reduce((sum, row) => sum + (row.disk_size as number), 0);
    const size = json((await cli(['prune', '--max-size', String(total - 1), '--json'])).stdout)[0] as {
      removed: Array<{ ref: string }>;
    };
    expect(size.removed.map((r) => r.ref)).toEqual(['beta:other:v1']);
  });

  it("removes stray temp and partial files and stale locks, under each entry's lock", async () => {
    await mkdir(join(ws.store, '.tmp', 'alpha:tpl:v9'), { recursive: true });
    await writeFile(join(ws.store, '.tmp', 'alpha:tpl:v9', 'partial'), 'x');
    await mkdir(join(ws.store, 'alpha:tpl:v8.lock'));
    const old = new Date(Date.now() - 60_000);
    await utimes(join(ws.store, 'alpha:tpl:v8.lock'), old, old);
    await writeFile(join(ws.store, 'alpha:tpl:v7.hash'), 'orphan');
    const result = json((await cli(['prune', '--json'])).stdout)[0] as { cleaned: string[]; removed: unknown[] };
    expect(result.removed).toEqual([]);
    expect(result.cleaned).toEqual(
      [
        join(ws.store, '.tmp', 'alpha:tpl:v9'),
        join(ws.store, 'alpha:tpl:v7.hash'),
        join(ws.store, 'alpha:tpl:v8.lock'),
      ].sort(),
    );
    const left = withoutLockFiles(await readdir(ws.store));
    expect(left.filter((name) => /v[789]/.test(name))).toEqual([]);
    expect(await readdir(join(ws.store, '.tmp'))).toEqual([]);
  });

  it('never removes an entry whose lock a fetch holds, and does not disturb a fetch in progress', async () => {
    const store = await openStore({ root: ws.store, lockStaleMs: 2000 });
    const key = { repository: 'alpha', template: 'tpl', version: 'v2' };
    await setUse('alpha:tpl:v2', 10);
    let result: { removed: Array<{ ref: string }>; kept: Array<{ ref: string; reason: string }> } | undefined;
    await withEntryLock(store, key, {}, async () => {
      result = json((await cli(['prune', '--older-than', '1d', '--json'])).stdout)[0] as typeof result;
    });
    expect(result!.kept).toEqual([{ ref: 'alpha:tpl:v2', reason: 'in use: a fetch holds its lock' }]);
    expect(await stat(join(ws.store, 'alpha:tpl:v2'))).toBeTruthy();

    // A real fetch racing prune: a slow download of a missing entry, prune (with stray cleaning) in the middle.
    await cli(['rm', 'alpha:tpl:v1']);
    const slowRepo = await ws.writeRepo(
      'alpha',
      lagoRepo(
        'alpha',
        { ...ws, baseurl: ws.baseurl.replace(/\/(ws-[^/]+)\/$/, '/slow/$1/') },
        {
          tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 100 } },
        },
      ),
      'alpha-slow.json',
    );
    const fetching = execa(process.execPath, [CLI, 'fetch', '-q', '--repo', slowRepo, 'alpha:tpl:v1'], {
      env: { ...env, PATH: TOOL_PATH, HOME: ws.dir, TEMPLATES_REPOS: '' },
      reject: false,
    });
    for (let i = 0; i < 100 && !(await stat(join(ws.store, 'alpha:tpl:v1.lock')).catch(() => undefined)); i++)
      await new Promise((r) => setTimeout(r, 50));
    const pruned = json((await cli(['prune', '--older-than', '0s', '--json'])).stdout)[0] as {
      removed: Array<{ ref: string }>;
      cleaned: string[];
    };
    expect(pruned.cleaned.filter((path) => path.includes('alpha:tpl:v1'))).toEqual([]);
    const fetched = await fetching;
    expect(fetched.exitCode).toBe(0);
    expect(await digestOf(join(ws.store, 'alpha:tpl:v1'))).toBe(await digestOf(disks.a));
  });
});

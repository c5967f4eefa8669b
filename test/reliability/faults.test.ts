// Faults of servers, disks and tools: each ends in a typed error (or a bounded retry that succeeds) and leaves the store as it was.
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execa } from 'execa';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fetchTemplate, openStore } from '../../src/index.js';
import { withEntryLock } from '../../src/store/lock.js';
import { startFaultServer, type FaultServer } from '../helpers/fault-server.js';
import { TOOL_PATH, digestOf, makeDisk, publishImage, toQcow2 } from '../helpers/images.js';
import { CLI, lagoRepo, librarySetup, runCli, withoutLockFiles, workspace, type Workspace } from '../helpers/env.js';

const run = promisify(execFile);
let disk: string;
let ws: Workspace;
let faults: FaultServer;

beforeAll(async () => {
  const shared = await workspace();
  disk = await makeDisk(join(shared.dir, 'a.raw'), { sizeMiB: 8, dataKiB: 2048 });
});
beforeEach(async () => {
  ws = await workspace();
  await writeFile(join(ws.dir, 'a.hash'), await digestOf(disk));
  await writeFile(join(ws.dir, 'a.metadata'), JSON.stringify({ distro: 'test' }));
  faults = await startFaultServer({
    'tpl/v1.raw': disk,
    'tpl/v1.raw.hash': join(ws.dir, 'a.hash'),
    'tpl/v1.raw.metadata': join(ws.dir, 'a.metadata'),
  });
});
afterEach(async () => {
  await faults.close();
  await ws.cleanup();
});

/** A library setup whose source is the fault server, misbehaving as `fault` says. */
async function faulty(fault: string, context: Parameters<typeof librarySetup>[2] = {}) {
  const repo = lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1 } } });
  repo.sources.web.args.baseurl = `${faults.base}${fault}/`;
  return librarySetup(ws, [await ws.writeRepo('r', repo)], context);
}

async function fetchWith(fault: string, context: Parameters<typeof librarySetup>[2] = {}) {
  const { store, repositories, context: ctx } = await faulty(fault, context);
  return fetchTemplate('r:tpl:v1', { store, repositories, context: ctx });
}

describe('faults', () => {
  it.each([
    ['503', 'busy503'],
    ['429', 'busy429'],
  ])('retries after HTTP %s, honouring Retry-After, and succeeds', async (_status, fault) => {
    const result = await fetchWith(fault);
    expect(await digestOf(result.path)).toBe(await digestOf(disk));
    expect(faults.hits.get(`/${fault}/tpl/v1.raw`)).toBe(2);
  });

  it('asks for the .metadata alongside the image, and for the .hash once the image answered', async () => {
    const result = await fetchWith('slowsidecars');
    expect(await digestOf(result.path)).toBe(await digestOf(disk));
    expect(JSON.parse(await readFile(`${result.path}.metadata`, 'utf8'))).toEqual({ distro: 'test' });
    // The .metadata takes 300 ms to answer: the image was asked for before it had answered. The .hash must describe
    // what the server sends as the image, so it is asked for after.
    const at = (event: string) => faults.events.indexOf(event);
    const image = at('asked /slowsidecars/tpl/v1.raw');
    expect(image).toBeGreaterThanOrEqual(0);
    expect(image).toBeLessThan(at('answered /slowsidecars/tpl/v1.raw.metadata'));
    expect(image).toBeLessThan(at('asked /slowsidecars/tpl/v1.raw.hash'));
  });

  it('gives up after a bounded number of retries with SOURCE_HTTP_ERROR (502)', async () => {
    await expect(fetchWith('down502', { retries: 2 })).rejects.toMatchObject({
      code: 'SOURCE_HTTP_ERROR',
      fields: { status: 502 },
    });
    expect(faults.hits.get('/down502/tpl/v1.raw')).toBe(3);
    expect(await ws.storeFiles()).toEqual(['.tmp']);
  });

  it.each([
    ['a connection reset mid-body', 'reset', {}],
    ['a stalled server (idle timeout)', 'stall', { idleTimeoutMs: 500 }],
    ['a Content-Length longer than the body', 'short', {}],
  ])('fails with SOURCE_UNREACHABLE on %s, storing nothing', async (_what, fault, context) => {
    await expect(fetchWith(fault, context)).rejects.toMatchObject({ code: 'SOURCE_UNREACHABLE' });
    expect(await ws.storeFiles()).toEqual(['.tmp']);
  });

  it('never stores the bytes past a Content-Length shorter than the body', async () => {
    const error = await fetchWith('long').catch((e: unknown) => e);
    expect(['SOURCE_UNREACHABLE', 'HASH_MISMATCH']).toContain((error as { code?: string }).code);
    expect(await ws.storeFiles()).toEqual(['.tmp']);
  });

  it('fails with SOURCE_UNREACHABLE on a DNS failure', async () => {
    const repo = lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1 } } });
    repo.sources.web.args.baseurl = 'http://templates.invalid/';
    const { store, repositories, context } = await librarySetup(ws, [await ws.writeRepo('r', repo)], { retries: 0 });
    await expect(fetchTemplate('r:tpl:v1', { store, repositories, context })).rejects.toMatchObject({
      code: 'SOURCE_UNREACHABLE',
      fields: { url: expect.stringMatching(/^http:\/\/templates\.invalid\//) },
    });
    expect(await ws.storeFiles()).toEqual(['.tmp']);
  });

  it('fails with STORE_FULL before the download when the image cannot fit, and with STORE_IO when the disk fills up during it', async () => {
    const small = join(ws.dir, 'small');
    await mkdir(small);
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
    try {
      // 512 KiB of random data: about as much xz, which decodes to at least as much again. 1 MiB cannot hold both.
      await publishImage(ws.www, 'tpl/v1.raw', disk);
      // 4 MiB of one byte: a few KiB of xz, so it looks as if it fits, until it decodes.
      const dense = join(ws.dir, 'dense.raw');
      await writeFile(dense, Buffer.alloc(4 * 2 ** 20, 0x5a));
      await publishImage(ws.www, 'tpl/dense.raw', dense);
      const repo = await ws.writeRepo(
        'r',
        lagoRepo('r', ws, {
          tpl: {
            v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1 },
            dense: { source: 'web', handle: 'tpl/dense.raw', timestamp: 2 },
          },
        }),
      );
      const { repositories, context } = await librarySetup(ws, [repo]);
      const store = await openStore({ root: join(small, 'store') });
      const files = async () =>
        withoutLockFiles(
          (await run('find', [join(small, 'store'), '-mindepth', '1'])).stdout.trim().split('\n'),
        ).sort();
      await expect(fetchTemplate('r:tpl:v1', { store, repositories, context })).rejects.toMatchObject({
        code: 'STORE_FULL',
        fields: { ref: 'r:tpl:v1' },
      });
      expect(await files()).toEqual([join(small, 'store', '.tmp')]);
      await expect(fetchTemplate('r:tpl:dense', { store, repositories, context })).rejects.toMatchObject({
        code: 'STORE_IO',
      });
      expect(await files()).toEqual([join(small, 'store', '.tmp')]);
    } finally {
      await run('umount', [small]);
    }
  });

  it('fails with TOOL_MISSING when qemu-img is not installed, and CONVERT_FAILED when it fails', async () => {
    const qcow = await toQcow2(disk, join(ws.dir, 'a.qcow2'));
    await publishImage(ws.www, 'tpl/v1.qcow2', qcow);
    const broken = join(ws.dir, 'broken.qcow2');
    const bytes = await readFile(qcow);
    bytes.fill(0xff, 512); // header kept, tables and data destroyed
    await writeFile(broken, bytes);
    await publishImage(ws.www, 'tpl/broken.qcow2', broken);
    const repo = await ws.writeRepo(
      'r',
      lagoRepo('r', ws, {
        tpl: {
          v1: { source: 'web', handle: 'tpl/v1.qcow2', timestamp: 1 },
          v2: { source: 'web', handle: 'tpl/broken.qcow2', timestamp: 2 },
        },
      }),
    );
    const missing = await librarySetup(ws, [repo], { qemuImg: '/nonexistent/qemu-img' });
    await expect(fetchTemplate('r:tpl:v1', { ...missing })).rejects.toMatchObject({
      code: 'TOOL_MISSING',
      fields: { tool: 'qemu-img' },
    });
    const { store, repositories, context } = await librarySetup(ws, [repo]);
    await expect(fetchTemplate('r:tpl:v2', { store, repositories, context })).rejects.toMatchObject({
      code: 'CONVERT_FAILED',
    });
    expect(await ws.storeFiles()).toEqual(['.tmp']);
  });

  it('lets a waiter answer from the store once the holder published, without queueing for the lock', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const repo = await ws.writeRepo(
      'r',
      lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1 } } }),
    );
    // The entry, fetched into another store, is what the holder will publish (by rename, as a fetch does).
    const elsewhere = join(ws.dir, 'elsewhere');
    expect((await runCli(['fetch', '-q', '--repo', repo, '--store', elsewhere, 'r:tpl:v1'])).exitCode).toBe(0);
    const store = await openStore({ root: ws.store });
    const waiter = await withEntryLock(store, { repository: 'r', template: 'tpl', version: 'v1' }, {}, async () => {
      const waiting = execa(
        process.execPath,
        [CLI, 'fetch', '--lock-wait', '5', '--repo', repo, '--store', ws.store, 'r:tpl:v1'],
        { reject: false, env: { PATH: TOOL_PATH }, timeout: 30_000 },
      );
      // It says it waits once it found the lock taken.
      await new Promise<void>((resolve) => {
        waiting.stderr!.on('data', (text: Buffer) => String(text).includes('waiting for another process') && resolve());
      });
      for (const name of (await readdir(elsewhere)).filter(
        (file) => file.startsWith('r:tpl:v1') && !file.endsWith('.lock'),
      )) {
        await rename(join(elsewhere, name), join(ws.store, name));
      }
      // Still holding the lock: the waiter must finish now, not when it is released.
      return waiting;
    });
    expect(waiter.exitCode).toBe(0);
    expect(String(waiter.stdout).trim()).toBe(join(ws.store, 'r:tpl:v1'));
    const downloads = (await ws.requests('/tpl/v1.raw.xz')).filter((line) => line.split(' ')[2] === '200');
    expect(downloads).toHaveLength(1);
  });

  it('names the holder (pid and host) when the lock is held past --lock-wait', async () => {
    await publishImage(ws.www, 'tpl/v1.raw', disk);
    const repo = await ws.writeRepo(
      'r',
      lagoRepo('r', ws, { tpl: { v1: { source: 'web', handle: 'tpl/v1.raw', timestamp: 1 } } }),
    );
    const store = await openStore({ root: ws.store });
    const result = await withEntryLock(store, { repository: 'r', template: 'tpl', version: 'v1' }, {}, () =>
      runCli(['fetch', '--json', '--lock-wait', '1', '--repo', repo, '--store', ws.store, 'r:tpl:v1']),
    );
    expect(result.exitCode).toBe(8);
    const { error } = JSON.parse(result.stdout);
    expect(error).toMatchObject({ code: 'LOCK_TIMEOUT', holder: `${process.pid}@${hostname()}` });
    expect(result.stderr).toContain(`held by pid ${process.pid} on ${hostname()}`);
  });
});

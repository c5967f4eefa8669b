// The lock file end to end: a round trip, a republished version, a vanished one, offline from the store, no churn, verify --locked.
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, workspace, type Workspace } from '../helpers/env.js';
import { makeDisk, publishImage } from '../helpers/images.js';

let ws: Workspace;
let repoFile: string;
let lockFile: string;
let digests: { v1: { sha1: string; xzSha256?: string }; v2: { sha1: string; xzSha256?: string } };
const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { HOME: ws.dir, ...env });
const codeOf = (stderr: string) => /\[([A-Z_]+)\]\s*$/.exec(stderr.trim())?.[1];

/** The repository: tiny v1 (with compressed_hash) and v2 (lago's way: .hash only), served by nginx. */
async function writeRepo(v1Handle = 'tiny/v1.raw', v1Compressed = digests.v1.xzSha256): Promise<void> {
  await writeFile(
    repoFile,
    JSON.stringify({
      name: 'locked',
      revision: 1,
      sources: { web: { type: 'http', args: { baseurl: ws.baseurl } } },
      templates: {
        tiny: {
          versions: {
            v1: { source: 'web', handle: v1Handle, timestamp: 1700000000, compressed_hash: `sha256:${v1Compressed}` },
            v2: { source: 'web', handle: 'tiny/v2.raw', timestamp: 1700000100 },
          },
        },
      },
    }),
  );
}

beforeAll(async () => {
  ws = await workspace();
  const one = await makeDisk(join(ws.dir, 'one.raw'), { sizeMiB: 4, dataKiB: 256, label: 'one' });
  const two = await makeDisk(join(ws.dir, 'two.raw'), { sizeMiB: 4, dataKiB: 256, label: 'two' });
  digests = { v1: await publishImage(ws.www, 'tiny/v1.raw', one), v2: await publishImage(ws.www, 'tiny/v2.raw', two) };
  repoFile = join(ws.dir, 'locked.json');
  lockFile = join(ws.dir, 'templates.lock.json');
  await writeRepo();
}, 60_000);

afterAll(async () => {
  await ws?.cleanup();
});

describe('templates lock and fetch --locked', () => {
  it('pins the newest and an exact version, sorted; a re-lock with no change leaves the file byte-identical', async () => {
    const locked = await cli([
      'lock',
      'locked:tiny',
      'locked:tiny:v1',
      '--repo',
      repoFile,
      '--output',
      lockFile,
      '--store',
      ws.store,
    ]);
    expect(locked.exitCode, locked.stderr).toBe(0);
    const lock = JSON.parse(await readFile(lockFile, 'utf8')) as {
      lockfileVersion: number;
      templates: Record<string, Record<string, unknown>>;
    };
    expect(lock.lockfileVersion).toBe(1);
    expect(Object.keys(lock.templates)).toEqual(['locked:tiny', 'locked:tiny:v1']);
    expect(lock.templates['locked:tiny']).toEqual({
      ref: 'locked:tiny:v2',
      repository: 'locked',
      template: 'tiny',
      version: 'v2',
      source: `${ws.baseurl}tiny/v2.raw.xz`,
      hash: `sha1:${digests.v2.sha1}`,
      compressed_hash: null,
      size: null,
      format: null,
      revision: 1,
    });
    expect(lock.templates['locked:tiny:v1']).toMatchObject({
      ref: 'locked:tiny:v1',
      compressed_hash: `sha256:${digests.v1.xzSha256}`,
      hash: `sha1:${digests.v1.sha1}`,
    });
    const before = await readFile(lockFile);
    const again = await cli(['lock', '--update', '--repo', repoFile, '--output', lockFile, '--store', ws.store]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).toContain('unchanged');
    expect(Buffer.compare(await readFile(lockFile), before)).toBe(0);
  });

  it('fetch --locked fetches exactly the pins; verify --locked finds them intact', async () => {
    const fetched = await cli(['fetch', '--locked', lockFile, '--repo', repoFile, '--store', ws.store, '--json', '-q']);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    const results = fetched.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { ref: string });
    expect(results.map((r) => r.ref)).toEqual(['locked:tiny:v2', 'locked:tiny:v1']);
    const verified = await cli(['verify', '--locked', lockFile, '--store', ws.store, '--json']);
    expect(verified.exitCode, verified.stdout).toBe(0);
    expect(
      verified.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { status: string }).status),
    ).toEqual(['ok', 'ok']);
  });

  it('works offline from the store', async () => {
    const offline = await cli([
      'fetch',
      '--locked',
      lockFile,
      '--repo',
      repoFile,
      '--store',
      ws.store,
      '--offline',
      '-q',
    ]);
    expect(offline.exitCode, offline.stderr).toBe(0);
    expect(offline.stdout.trim().split('\n')).toHaveLength(2);
  });

  it('a version republished with another digest: LOCK_MISMATCH (exit 14) naming both digests, nothing fetched', async () => {
    const store = join(ws.dir, 'store-republished');
    await writeRepo('tiny/v2.raw', digests.v2.xzSha256);
    const refused = await cli([
      'fetch',
      '--locked',
      lockFile,
      'locked:tiny:v1',
      '--repo',
      repoFile,
      '--store',
      store,
      '--json',
    ]);
    expect(refused.exitCode).toBe(14);
    const error = (
      JSON.parse(refused.stdout.trim().split('\n').pop()!) as {
        error: { code: string; expected: string; actual: string };
      }
    ).error;
    expect(error).toMatchObject({
      code: 'LOCK_MISMATCH',
      expected: `sha256:${digests.v1.xzSha256}`,
      actual: `sha256:${digests.v2.xzSha256}`,
    });
    expect((await readdir(store).catch(() => [])).filter((name) => name.startsWith('locked:'))).toEqual([]);
    await writeRepo();
  });

  it('a .hash file that now gives another digest, or a vanished version: LOCK_MISMATCH', async () => {
    const store = join(ws.dir, 'store-sidecar');
    const hashFile = join(ws.www, 'tiny/v2.raw.hash');
    const original = await readFile(hashFile, 'utf8');
    await writeFile(hashFile, digests.v1.sha1);
    const sidecar = await cli(['fetch', '--locked', lockFile, 'locked:tiny', '--repo', repoFile, '--store', store]);
    expect([sidecar.exitCode, codeOf(sidecar.stderr)]).toEqual([14, 'LOCK_MISMATCH']);
    await writeFile(hashFile, original);
    await writeFile(repoFile, (await readFile(repoFile, 'utf8')).replace('"v2"', '"v3"'));
    const gone = await cli(['fetch', '--locked', lockFile, 'locked:tiny', '--repo', repoFile, '--store', store]);
    expect([gone.exitCode, codeOf(gone.stderr)]).toEqual([14, 'LOCK_MISMATCH']);
    await writeRepo();
  });

  it('verify --locked: a pin not stored is exit 14; a stored image whose bytes changed is exit 11', async () => {
    const store = join(ws.dir, 'store-verify');
    expect((await cli(['verify', '--locked', lockFile, '--store', store])).exitCode).toBe(14);
    expect((await cli(['fetch', '--locked', lockFile, '--repo', repoFile, '--store', store, '-q'])).exitCode).toBe(0);
    const image = join(store, 'locked:tiny:v1');
    const bytes = await readFile(image);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(image, bytes);
    expect((await cli(['verify', '--locked', lockFile, '--store', store])).exitCode).toBe(11);
  });
});

describe('a .zst in a lock file', () => {
  it('is pinned with zst_hash and fetched only with it; a republished .zst is LOCK_MISMATCH; a pin without it takes the pinned .xz', async () => {
    const disk = await makeDisk(join(ws.dir, 'z.raw'), { sizeMiB: 4, dataKiB: 256, label: 'z' });
    const published = await publishImage(ws.www, 'zt/v1.raw', disk, { zst: true });
    const zRepo = join(ws.dir, 'zlock.json');
    const zLock = join(ws.dir, 'zlock.lock.json');
    const write = (zst: Record<string, unknown>) =>
      writeFile(
        zRepo,
        JSON.stringify({
          name: 'zlock',
          sources: { web: { type: 'http', args: { baseurl: ws.baseurl } } },
          templates: {
            t: {
              versions: {
                v1: {
                  source: 'web',
                  handle: 'zt/v1.raw',
                  timestamp: 1,
                  compressed_hash: `sha256:${published.xzSha256}`,
                  ...zst,
                },
              },
            },
          },
        }),
      );
    await write(published.zst!);
    expect((await cli(['lock', 'zlock:t:v1', '--repo', zRepo, '--output', zLock])).exitCode).toBe(0);
    const lock = JSON.parse(await readFile(zLock, 'utf8')) as { templates: Record<string, Record<string, unknown>> };
    expect(lock.templates['zlock:t:v1']).toMatchObject({
      zst_hash: published.zst!.zst_hash,
      source: `${ws.baseurl}zt/v1.raw.zst`,
    });
    const store = join(ws.dir, 'zstore');
    const fetched = await cli(['fetch', '--locked', zLock, '--repo', zRepo, '--store', store]);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    const record = async () =>
      JSON.parse(await readFile(join(store, 'zlock:t:v1.record.json'), 'utf8')) as { verified: { of: string } };
    expect((await record()).verified.of).toBe('zst');
    // Republished .zst (another digest in the JSON): refused before any download.
    await write({ ...published.zst, zst_hash: `sha256:${'1'.repeat(64)}` });
    const other = join(ws.dir, 'zstore2');
    const republished = await cli(['fetch', '--locked', zLock, '--repo', zRepo, '--store', other]);
    expect(republished.exitCode).toBe(14);
    expect(codeOf(republished.stderr)).toBe('LOCK_MISMATCH');
    // A pin written before zstd (no zst_hash): the listed .zst is not trusted, the pinned .xz is fetched.
    await write(published.zst!);
    delete lock.templates['zlock:t:v1']!.zst_hash;
    await writeFile(zLock, JSON.stringify(lock));
    const older = await cli(['fetch', '--locked', zLock, '--repo', zRepo, '--store', other]);
    expect(older.exitCode, older.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(other, 'zlock:t:v1.record.json'), 'utf8')).verified.of).toBe('compressed');
  });
});

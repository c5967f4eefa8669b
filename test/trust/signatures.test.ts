// Signed repositories against the real minisign: keys and signatures both ways, tampering, other keys, rollback, age, mirrors, offline.
import { copyFile, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signRepository } from '../../src/publish/sign.js';
import { readSecretKey } from '../../src/trust/keys.js';
import { runCli, workspace, type Workspace } from '../helpers/env.js';
import { makeDisk, publishImage } from '../helpers/images.js';
import { freePort } from '../helpers/nginx.js';
import { startServe } from '../helpers/serve.js';

let ws: Workspace;
let ours: { key: string; pub: string; line: string };
let theirs: { key: string; pub: string; line: string };
let repoJson: unknown;
let tinySha1: string;
const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { HOME: ws.dir, ...env });
const codeOf = (stderr: string) => /\[([A-Z_]+)\]\s*$/.exec(stderr.trim())?.[1];
const pubLine = async (file: string) => (await readFile(file, 'utf8')).split('\n')[1]!.trim();

/** Writes the repository (revision `revision`) as `file` below the served directory; returns its URL. */
async function serveRepo(file: string, revision: number, extra: Record<string, unknown> = {}): Promise<string> {
  const path = join(ws.www, file);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, `${JSON.stringify({ ...(repoJson as object), revision, ...extra }, null, 2)}\n`);
  return `${ws.baseurl}${file}`;
}

beforeAll(async () => {
  ws = await workspace();
  const disk = await makeDisk(join(ws.dir, 'disk.raw'), { sizeMiB: 4, dataKiB: 256, label: 'signed' });
  tinySha1 = (await publishImage(ws.www, 'tiny/v1.raw', disk)).sha1;
  repoJson = {
    name: 'signed',
    sources: { web: { type: 'http', args: { baseurl: ws.baseurl } } },
    templates: {
      tiny: {
        versions: { v1: { source: 'web', handle: 'tiny/v1.raw', timestamp: 1700000000, hash: `sha1:${tinySha1}` } },
      },
    },
  };
  const keygen = await cli(['keygen', '--output', join(ws.dir, 'ours.key'), '--no-password']);
  expect(keygen.exitCode, keygen.stderr).toBe(0);
  ours = { key: join(ws.dir, 'ours.key'), pub: join(ws.dir, 'ours.key.pub'), line: keygen.stdout.trim() };
  await execa('minisign', ['-G', '-W', '-p', join(ws.dir, 'theirs.pub'), '-s', join(ws.dir, 'theirs.key')]);
  theirs = {
    key: join(ws.dir, 'theirs.key'),
    pub: join(ws.dir, 'theirs.pub'),
    line: await pubLine(join(ws.dir, 'theirs.pub')),
  };
}, 60_000);

afterAll(async () => {
  await ws?.cleanup();
});

describe('minisign compatibility', () => {
  it('minisign verifies what templates sign wrote, and reads its trusted comment (repository, revision, time)', async () => {
    const url = await serveRepo('a/repo.json', 3);
    const signed = await cli(['sign', join(ws.www, 'a/repo.json'), '--key', ours.key, '--json']);
    expect(signed.exitCode, signed.stderr).toBe(0);
    expect(JSON.parse(signed.stdout)).toMatchObject({ repository: 'signed', revision: 3 });
    const verified = await execa('minisign', ['-V', '-m', join(ws.www, 'a/repo.json'), '-P', ours.line]);
    expect(verified.stdout).toMatch(
      /Trusted comment: timestamp:\d+\tfile:repo\.json\thashed\trepository:signed\trevision:3/,
    );
    const resolved = await cli([
      'resolve',
      'signed:tiny:v1',
      '--repo',
      url,
      '--trusted-key',
      ours.pub,
      '--store',
      join(ws.dir, 'store-a'),
      '--json',
    ]);
    expect(resolved.exitCode, resolved.stderr).toBe(0);
  });

  it('templates verifies what minisign signed, and signs with a key minisign made', async () => {
    const url = await serveRepo('b/repo.json', 1);
    await execa('minisign', ['-S', '-s', theirs.key, '-m', join(ws.www, 'b/repo.json')]);
    const fetched = await cli([
      'fetch',
      'signed:tiny:v1',
      '--repo',
      url,
      '--trusted-key',
      theirs.line,
      '--store',
      join(ws.dir, 'store-b'),
      '-q',
    ]);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    const info = await cli([
      'info',
      'signed:tiny:v1',
      '--repo',
      url,
      '--trusted-key',
      theirs.line,
      '--store',
      join(ws.dir, 'store-b'),
      '--json',
    ]);
    expect(JSON.parse(info.stdout).resolution.signature).toMatchObject({
      state: 'verified',
      keyId: expect.stringMatching(/^[0-9A-F]{16}$/),
    });
    // Ours with minisign's secret key; minisign checks it.
    expect((await cli(['sign', join(ws.www, 'b/repo.json'), '--key', theirs.key])).exitCode).toBe(0);
    await execa('minisign', ['-V', '-m', join(ws.www, 'b/repo.json'), '-p', theirs.pub]);
  });

  it('minisign signs with a key templates keygen wrote', async () => {
    await serveRepo('c/repo.json', 1);
    await execa('minisign', ['-S', '-s', ours.key, '-m', join(ws.www, 'c/repo.json')]);
    await execa('minisign', ['-V', '-m', join(ws.www, 'c/repo.json'), '-p', ours.pub]);
  });

  it('index --sign signs what it writes (minisign verifies it); an unchanged run leaves the signature alone', async () => {
    const dir = join(ws.dir, 'published');
    await mkdir(join(dir, 'tiny', 'v1'), { recursive: true });
    await copyFile(join(ws.dir, 'disk.raw'), join(dir, 'tiny', 'v1', 'disk.raw'));
    const indexed = await cli(['index', dir, '--name', 'pub', '--sign', ours.key, '-q', '--json']);
    expect(indexed.exitCode, indexed.stderr).toBe(0);
    expect(JSON.parse(indexed.stdout)).toMatchObject({ signature: join(dir, 'pub.json.minisig') });
    const verified = await execa('minisign', ['-V', '-m', join(dir, 'pub.json'), '-p', ours.pub]);
    expect(verified.stdout).toMatch(/repository:pub\trevision:1/);
    const before = (await stat(join(dir, 'pub.json.minisig'))).mtimeMs;
    const again = await cli(['index', dir, '--name', 'pub', '--sign', ours.key, '-q', '--json']);
    expect(JSON.parse(again.stdout).signature).toBeUndefined();
    expect((await stat(join(dir, 'pub.json.minisig'))).mtimeMs).toBe(before);
  });

  it('an encrypted key: its password from --password-fd signs; a wrong one is KEY_INVALID', async () => {
    const key = join(ws.dir, 'locked.key');
    await writeFile(join(ws.dir, 'pw'), 'correct horse\n');
    await writeFile(join(ws.dir, 'wrong'), 'battery staple\n');
    const made = await execa('bash', [
      '-c',
      `"${process.execPath}" "${join(import.meta.dirname, '../../bin/templates')}" keygen --output "${key}" --password-fd 3 3<"${join(ws.dir, 'pw')}"`,
    ]);
    expect(made.stdout.trim()).toMatch(/^RW/);
    expect(await readFile(key, 'utf8')).toMatch(/^untrusted comment: minisign encrypted secret key\nRWRTY0Iy/);
    await serveRepo('d/repo.json', 1);
    const sign = (pw: string) =>
      execa(
        'bash',
        [
          '-c',
          `"${process.execPath}" "${join(import.meta.dirname, '../../bin/templates')}" sign "${join(ws.www, 'd/repo.json')}" --key "${key}" --password-fd 3 3<"${pw}"`,
        ],
        { reject: false },
      );
    const wrong = await sign(join(ws.dir, 'wrong'));
    expect(codeOf(wrong.stderr)).toBe('KEY_INVALID');
    expect((await sign(join(ws.dir, 'pw'))).exitCode).toBe(0);
    await execa('minisign', ['-V', '-m', join(ws.www, 'd/repo.json'), '-p', `${key}.pub`]);
  }, 60_000);
});

describe('refusals', () => {
  it('a flipped byte in the JSON: REPO_SIGNATURE_INVALID (exit 13), nothing fetched', async () => {
    const url = await serveRepo('e/repo.json', 1);
    await signRepository(join(ws.www, 'e/repo.json'), await readSecretKey(ours.key, async () => ''));
    const text = await readFile(join(ws.www, 'e/repo.json'), 'utf8');
    await writeFile(join(ws.www, 'e/repo.json'), text.replace('"revision": 1', '"revision": 2'));
    const store = join(ws.dir, 'store-e');
    const refused = await cli(['fetch', 'signed:tiny:v1', '--repo', url, '--trusted-key', ours.pub, '--store', store]);
    expect(refused.exitCode).toBe(13);
    expect(codeOf(refused.stderr)).toBe('REPO_SIGNATURE_INVALID');
    expect((await readdir(store).catch(() => [])).filter((name) => name.startsWith('signed:'))).toEqual([]);
  });

  it('a signature by another key: REPO_SIGNATURE_INVALID naming the key', async () => {
    const url = await serveRepo('f/repo.json', 1);
    await execa('minisign', ['-S', '-s', theirs.key, '-m', join(ws.www, 'f/repo.json')]);
    const refused = await cli([
      'resolve',
      'signed:tiny:v1',
      '--repo',
      url,
      '--trusted-key',
      ours.pub,
      '--store',
      join(ws.dir, 'store-f'),
      '--json',
    ]);
    expect(refused.exitCode).toBe(13);
    const error = JSON.parse(refused.stdout.trim().split('\n').pop()!).error as { code: string; actual?: string };
    expect(error.code).toBe('REPO_SIGNATURE_INVALID');
    expect(error.actual).toMatch(/^[0-9A-F]{16}$/);
  });

  it('no .minisig where a key is trusted, or no trusted key under requireSignatures: REPO_UNSIGNED', async () => {
    const url = await serveRepo('g/repo.json', 1);
    const store = join(ws.dir, 'store-g');
    const missing = await cli([
      'resolve',
      'signed:tiny:v1',
      '--repo',
      url,
      '--trusted-key',
      ours.pub,
      '--store',
      store,
    ]);
    expect([missing.exitCode, codeOf(missing.stderr)]).toEqual([13, 'REPO_UNSIGNED']);
    const required = await cli(['resolve', 'signed:tiny:v1', '--repo', url, '--store', store], {
      TEMPLATES_REQUIRE_SIGNATURES: '1',
    });
    expect([required.exitCode, codeOf(required.stderr)]).toEqual([13, 'REPO_UNSIGNED']);
    // A rule for this name in the config file applies without --trusted-key.
    const config = join(ws.dir, 'config-g.json');
    await writeFile(config, JSON.stringify({ trust: [{ repo: 'signed', publicKey: ours.line }] }));
    const byName = await cli(['resolve', 'signed:tiny:v1', '--repo', url, '--store', store, '--config', config]);
    expect([byName.exitCode, codeOf(byName.stderr)]).toEqual([13, 'REPO_UNSIGNED']);
    const unsigned = await cli(['resolve', 'signed:tiny:v1', '--repo', url, '--store', store]);
    expect(unsigned.exitCode, unsigned.stderr).toBe(0);
  });

  it('a replayed older signed revision: REPO_ROLLBACK, unless --allow-rollback', async () => {
    const secret = await readSecretKey(ours.key, async () => '');
    const url = await serveRepo('h/repo.json', 4);
    await signRepository(join(ws.www, 'h/repo.json'), secret);
    const old = {
      json: await readFile(join(ws.www, 'h/repo.json')),
      sig: await readFile(join(ws.www, 'h/repo.json.minisig')),
    };
    await serveRepo('h/repo.json', 5);
    await signRepository(join(ws.www, 'h/repo.json'), secret);
    const store = join(ws.dir, 'store-h');
    const args = ['resolve', 'signed:tiny:v1', '--repo', url, '--trusted-key', ours.pub, '--store', store, '--refresh'];
    expect((await cli(args)).exitCode).toBe(0);
    await writeFile(join(ws.www, 'h/repo.json'), old.json);
    await writeFile(join(ws.www, 'h/repo.json.minisig'), old.sig);
    const replayed = await cli(args);
    expect([replayed.exitCode, codeOf(replayed.stderr)]).toEqual([13, 'REPO_ROLLBACK']);
    expect((await cli([...args, '--allow-rollback'])).exitCode).toBe(0);
  });

  it('maxSignatureAge: a signature older than it is REPO_SIGNATURE_EXPIRED', async () => {
    const url = await serveRepo('i/repo.json', 1);
    await signRepository(join(ws.www, 'i/repo.json'), await readSecretKey(ours.key, async () => ''), {
      now: () => Date.now() - 3 * 86_400_000,
    });
    const args = [
      'resolve',
      'signed:tiny:v1',
      '--repo',
      url,
      '--trusted-key',
      ours.pub,
      '--store',
      join(ws.dir, 'store-i'),
    ];
    const stale = await cli(args, { TEMPLATES_MAX_SIGNATURE_AGE: String(86_400) });
    expect([stale.exitCode, codeOf(stale.stderr)]).toEqual([13, 'REPO_SIGNATURE_EXPIRED']);
    expect((await cli(args, { TEMPLATES_MAX_SIGNATURE_AGE: String(7 * 86_400) })).exitCode).toBe(0);
  });

  it('a mirror serving a tampered JSON while the primary is down: REPO_SIGNATURE_INVALID; an intact mirror copy is used', async () => {
    const dead = `http://127.0.0.1:${await freePort()}/`;
    await serveRepo('mirror/j.json', 1);
    await signRepository(join(ws.www, 'mirror/j.json'), await readSecretKey(ours.key, async () => ''));
    const env = { TEMPLATES_MIRRORS: `${dead}=${ws.baseurl}mirror/` };
    const args = [
      'resolve',
      'signed:tiny:v1',
      '--repo',
      `${dead}j.json`,
      '--trusted-key',
      ours.pub,
      '--store',
      join(ws.dir, 'store-j'),
    ];
    const intact = await cli(args, env);
    expect(intact.exitCode, intact.stderr).toBe(0);
    expect(intact.stderr).toContain('mirror');
    const text = await readFile(join(ws.www, 'mirror/j.json'), 'utf8');
    await writeFile(join(ws.www, 'mirror/j.json'), text.replace('tiny/v1.raw', 'tiny/evil.raw'));
    const tampered = await cli([...args, '--refresh'], env);
    expect([tampered.exitCode, codeOf(tampered.stderr)]).toEqual([13, 'REPO_SIGNATURE_INVALID']);
  });

  it('offline, the cached copy is checked with its cached signature', async () => {
    const url = await serveRepo('k/repo.json', 1);
    await signRepository(join(ws.www, 'k/repo.json'), await readSecretKey(ours.key, async () => ''));
    const store = join(ws.dir, 'store-k');
    const args = ['resolve', 'signed:tiny:v1', '--repo', url, '--trusted-key', ours.pub, '--store', store];
    expect((await cli(args)).exitCode).toBe(0);
    expect((await cli([...args, '--offline'])).exitCode).toBe(0);
    const [cached] = await readdir(join(store, '.repos'));
    const path = join(store, '.repos', cached!);
    const entry = JSON.parse(await readFile(path, 'utf8')) as { body: string; signature?: string };
    expect(entry.signature).toMatch(/^untrusted comment/);
    await writeFile(path, JSON.stringify({ ...entry, body: entry.body.replace('1700000000', '1700000001') }));
    const offline = await cli([...args, '--offline']);
    expect([offline.exitCode, codeOf(offline.stderr)]).toEqual([13, 'REPO_SIGNATURE_INVALID']);
  });

  it("status shows each copy's signature: verified, and invalid once tampered (exit 12)", async () => {
    const url = await serveRepo('status/repo.json', 2);
    await signRepository(join(ws.www, 'status/repo.json'), await readSecretKey(ours.key, async () => ''));
    const args = [
      'status',
      '--json',
      '--repo',
      url,
      '--trusted-key',
      ours.pub,
      '--store',
      join(ws.dir, 'store-status'),
    ];
    const good = await cli(args);
    expect(good.exitCode, good.stdout + good.stderr).toBe(0);
    const row = (out: string) =>
      (JSON.parse(out) as { servers: Array<{ repositories: Array<{ signature: { state: string } }> }> }).servers[0]!
        .repositories[0]!;
    expect(row(good.stdout).signature).toMatchObject({ state: 'verified' });
    await writeFile(
      join(ws.www, 'status/repo.json'),
      (await readFile(join(ws.www, 'status/repo.json'), 'utf8')).replace('"revision": 2', '"revision": 3'),
    );
    const bad = await cli(args);
    expect(bad.exitCode).toBe(12);
    expect(row(bad.stdout).signature).toMatchObject({ state: 'invalid' });
  });
});

describe('through templates serve', () => {
  it('serve passes the upstream JSON and .minisig on unchanged; a neighbour checks them and fetches with the signed digests', async () => {
    const url = await serveRepo('served/repo.json', 7);
    await signRepository(join(ws.www, 'served/repo.json'), await readSecretKey(ours.key, async () => ''));
    const server = await startServe(
      ['--repo', url, '--store', join(ws.dir, 'store-cache'), '--trusted-key', ours.pub],
      { HOME: ws.dir },
    );
    try {
      const upstreamSig = await (await fetch(`${server.url}/repos/signed/upstream.json.minisig`)).text();
      expect(upstreamSig).toBe(await readFile(join(ws.www, 'served/repo.json.minisig'), 'utf8'));
      expect(await (await fetch(`${server.url}/repos/signed/upstream.json`)).text()).toBe(
        await readFile(join(ws.www, 'served/repo.json'), 'utf8'),
      );
      const neighbour = [
        '--repo',
        `${server.url}/repos/signed.json`,
        '--trusted-key',
        ours.pub,
        '--store',
        join(ws.dir, 'store-neighbour'),
      ];
      const resolved = await cli(['resolve', 'signed:tiny:v1', '--json', ...neighbour]);
      expect(resolved.exitCode, resolved.stderr).toBe(0);
      expect(JSON.parse(resolved.stdout).signature).toMatchObject({
        state: 'verified',
        revision: 7,
        upstream: `${server.url}/repos/signed/upstream.json`,
      });
      const fetched = await cli(['fetch', 'signed:tiny:v1', '-q', ...neighbour]);
      expect(fetched.exitCode, fetched.stderr).toBe(0);
      // The cache host checked it too (it trusts the key): its usage API says so.
      const usage = (await (await fetch(`${server.url}/api/1/repositories/signed`)).json()) as { signature?: unknown };
      expect(usage.signature).toMatchObject({ state: 'verified', revision: 7 });

      // A cache host that lies: its JSON names other digests (overridden by the signed ones), or passes on an altered upstream.
      const served = JSON.parse(await (await fetch(`${server.url}/repos/signed.json`)).text()) as Record<string, any>;
      served.templates.tiny.versions.v1.hash = `sha1:${'0'.repeat(40)}`;
      served.sources.cache.args.baseurl = `${server.url}/repos/signed/`;
      await mkdir(join(ws.www, 'liar/signed'), { recursive: true });
      await writeFile(join(ws.www, 'liar/signed.json'), JSON.stringify(served));
      await writeFile(join(ws.www, 'liar/signed/upstream.json'), await readFile(join(ws.www, 'served/repo.json')));
      await writeFile(join(ws.www, 'liar/signed/upstream.json.minisig'), upstreamSig);
      const liar = [
        '--repo',
        `${ws.baseurl}liar/signed.json`,
        '--trusted-key',
        ours.pub,
        '--store',
        join(ws.dir, 'store-liar'),
      ];
      const overridden = await cli(['resolve', 'signed:tiny:v1', '--json', ...liar]);
      expect(overridden.exitCode, overridden.stderr).toBe(0);
      expect(JSON.parse(overridden.stdout).hash).toBe(tinySha1);
      await writeFile(
        join(ws.www, 'liar/signed/upstream.json'),
        (await readFile(join(ws.www, 'served/repo.json'), 'utf8')).replace('"revision": 7', '"revision": 8'),
      );
      const altered = await cli(['resolve', 'signed:tiny:v1', ...liar, '--refresh']);
      expect([altered.exitCode, codeOf(altered.stderr)]).toEqual([13, 'REPO_SIGNATURE_INVALID']);
    } finally {
      await server.stop();
    }
  }, 60_000);

  it('a signed local repository with a file source, served: the neighbour checks it and keeps its versions', async () => {
    const dir = join(ws.dir, 'local-signed');
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'signed.json');
    await writeFile(
      file,
      JSON.stringify({
        ...(repoJson as object),
        sources: { disk: { type: 'file', args: { root: ws.www } } },
        templates: {
          tiny: {
            versions: {
              v1: { source: 'disk', handle: 'tiny/v1.raw', timestamp: 1700000000, hash: `sha1:${tinySha1}` },
            },
          },
        },
      }),
    );
    await signRepository(file, await readSecretKey(ours.key, async () => ''));
    const server = await startServe(['--repo', file, '--store', join(ws.dir, 'store-local-cache')], { HOME: ws.dir });
    try {
      const resolved = await cli([
        'resolve',
        'signed:tiny:v1',
        '--json',
        '--repo',
        `${server.url}/repos/signed.json`,
        '--trusted-key',
        ours.pub,
        '--store',
        join(ws.dir, 'store-local-neighbour'),
      ]);
      expect(resolved.exitCode, resolved.stderr).toBe(0);
      expect(JSON.parse(resolved.stdout)).toMatchObject({ hash: tinySha1, signature: { state: 'verified' } });
    } finally {
      await server.stop();
    }
  }, 60_000);
});

// templates serve with --auth: htpasswd -B users, tokens from /auth_token, expiry, rate limit, anonymous read, the fetch client's credentials.
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, workspace, type Workspace } from '../helpers/env.js';
import { digestOf, makeDisk, publishImage } from '../helpers/images.js';
import { startServe, type Served } from '../helpers/serve.js';

let ws: Workspace;
let disk: string;
let htpasswd: string;
let closed: Served;
let shortLived: Served;
let anonymousRead: Served;

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
async function token(server: Served, password = 'sesame'): Promise<Response> {
  return fetch(`${server.url}/auth_token`, { headers: { authorization: basic('alice', password) } });
}

beforeAll(async () => {
  ws = await workspace();
  disk = await makeDisk(join(ws.dir, 'a.raw'), { sizeMiB: 4, dataKiB: 256 });
  await publishImage(ws.www, 'a/v1', disk);
  const repo = await ws.writeRepo('up', {
    name: 'up',
    sources: { web: { type: 'http', args: { baseurl: ws.baseurl } } },
    templates: { a: { versions: { v1: { source: 'web', handle: 'a/v1', timestamp: 1 } } } },
  });
  htpasswd = join(ws.dir, 'htpasswd');
  await execa('htpasswd', ['-B', '-b', '-c', htpasswd, 'alice', 'sesame']);
  const common = ['--store', join(ws.dir, 'cache'), '--repo', repo, '--auth', htpasswd];
  [closed, shortLived, anonymousRead] = await Promise.all([
    startServe([...common, '--secret-file', join(ws.dir, 'secret')], { HOME: ws.dir }),
    startServe([...common, '--secret-file', join(ws.dir, 'secret'), '--token-ttl', '1s'], { HOME: ws.dir }),
    startServe([...common, '--secret-file', join(ws.dir, 'secret'), '--anonymous', 'read'], { HOME: ws.dir }),
  ]);
});

afterAll(async () => {
  await Promise.all([closed?.stop(), shortLived?.stop(), anonymousRead?.stop()]);
  await ws?.cleanup();
});

describe('templates serve --auth', () => {
  it('creates the secret 0600 and refuses a request without a token (401, WWW-Authenticate naming where tokens come from)', async () => {
    expect((await stat(join(ws.dir, 'secret'))).mode & 0o777).toBe(0o600);
    for (const path of ['/repos/up.json', '/api/1/repositories', '/api/1/store']) {
      const response = await fetch(`${closed.url}${path}`);
      expect(response.status, path).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe(`Bearer realm="${closed.url}/auth_token"`);
    }
    for (const path of ['/healthz', '/readyz', '/metrics'])
      expect((await fetch(`${closed.url}${path}`)).status, path).toBe(200);
  });

  it('hands out a token for a user of the htpasswd -B file, and refuses a wrong password', async () => {
    expect((await token(closed, 'wrong')).status).toBe(401);
    expect((await fetch(`${closed.url}/auth_token`)).status).toBe(401);
    const response = await token(closed);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { auth_token: string; expires_in: number };
    expect(body.expires_in).toBe(3600);
    const repo = await fetch(`${closed.url}/repos/up.json`, {
      headers: { authorization: `Bearer ${body.auth_token}` },
    });
    expect(repo.status).toBe(200);
    // Signed with the secret file: another server with the same secret accepts it (a restart keeps tokens valid).
    expect(
      (await fetch(`${anonymousRead.url}/api/1/store`, { headers: { authorization: `Bearer ${body.auth_token}` } }))
        .status,
    ).toBe(200);
    expect(
      (await fetch(`${closed.url}/api/1/store`, { headers: { authorization: `Bearer ${body.auth_token}x` } })).status,
    ).toBe(401);
  });

  it('refuses an expired token with invalid_token', async () => {
    const { auth_token } = (await (await token(shortLived)).json()) as { auth_token: string };
    await sleep(2200);
    const response = await fetch(`${shortLived.url}/api/1/store`, {
      headers: { authorization: `Bearer ${auth_token}` },
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });

  it('lets templates fetch through with TEMPLATES_TOKEN, with Basic credentials from the config file, and fails with AUTH_FAILED without', async () => {
    const { auth_token } = (await (await token(closed)).json()) as { auth_token: string };
    const args = (store: string) => [
      'fetch',
      '--store',
      join(ws.dir, store),
      '--repo',
      `${closed.url}/repos/up.json`,
      'up:a',
    ];
    const withToken = await runCli(args('s1'), { HOME: ws.dir, TEMPLATES_TOKEN: auth_token });
    expect(withToken.exitCode, withToken.stderr).toBe(0);
    expect(await digestOf(join(ws.dir, 's1', 'up:a:v1'))).toBe(await digestOf(disk));
    expect(withToken.stderr).not.toContain(auth_token);
    const config = join(ws.dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({ auth: [{ prefix: `${closed.url}/`, username: 'alice', password: 'sesame' }] }),
    );
    const withConfig = await runCli([...args('s2'), '--config', config], { HOME: ws.dir });
    expect(withConfig.exitCode, withConfig.stderr).toBe(0);
    const without = await runCli(args('s3'), { HOME: ws.dir });
    expect(without.exitCode).toBe(6);
    expect(without.stderr).toContain('[AUTH_FAILED]');
  });

  it('reads credentials from ~/.netrc', async () => {
    const home = join(ws.dir, 'home');
    await mkdir(home, { recursive: true });
    await writeFile(join(home, '.netrc'), 'machine 127.0.0.1 login alice password sesame\n', { mode: 0o600 });
    const result = await runCli(
      ['fetch', '--store', join(ws.dir, 's4'), '--repo', `${closed.url}/repos/up.json`, 'up:a'],
      { HOME: home },
    );
    expect(result.exitCode, result.stderr).toBe(0);
  });

  it('with --anonymous read opens /repos/ and keeps the API closed', async () => {
    const result = await runCli(
      ['fetch', '--store', join(ws.dir, 's5'), '--repo', `${anonymousRead.url}/repos/up.json`, 'up:a'],
      { HOME: ws.dir },
    );
    expect(result.exitCode, result.stderr).toBe(0);
    expect((await fetch(`${anonymousRead.url}/api/1/repositories`)).status).toBe(401);
  });

  it('rate-limits /auth_token per client (429 with Retry-After)', async () => {
    let limited: Response | undefined;
    for (let i = 0; i < 15 && !limited; i++) {
      const response = await token(shortLived, 'wrong');
      if (response.status === 429) limited = response;
    }
    expect(limited?.status).toBe(429);
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('refuses to start with an htpasswd entry that is not bcrypt', async () => {
    const md5 = join(ws.dir, 'htpasswd-md5');
    await execa('htpasswd', ['-m', '-b', '-c', md5, 'bob', 'pw']);
    const result = await runCli(['serve', '--listen', '127.0.0.1:0', '--store', join(ws.dir, 'x'), '--auth', md5], {
      HOME: ws.dir,
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('[CONFIG_INVALID]');
    expect(result.stderr).toContain('htpasswd -B');
    expect(await readFile(md5, 'utf8')).toContain('$apr1$');
  });
});

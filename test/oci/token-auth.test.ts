// Registry Bearer auth as Docker Hub, GHCR and Harbor do it: docker-registry with token auth behind a small token server.
import { randomUUID, X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { execa } from 'execa';
import { SignJWT, importPKCS8 } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, workspace, type Workspace } from '../helpers/env.js';
import { selfSigned } from '../helpers/tls.js';
import { makeDisk, publishImage } from '../helpers/images.js';
import { freePort } from '../helpers/nginx.js';
import { startRegistry, type RunningRegistry } from '../helpers/registry.js';

let ws: Workspace;
let registry: RunningRegistry;
let tokenServer: Server;
/** Every token request: who asked (Basic user or anonymous) and for which scopes. */
const asked: Array<{ user: string; scopes: string[] }> = [];
let repoFile: string;
let stored: string;
const cli = (args: string[], env: Record<string, string> = {}) => runCli(args, { HOME: ws.dir, ...env });
const lastJson = (text: string) => JSON.parse(text.trim().split('\n').pop()!) as Record<string, any>;

beforeAll(async () => {
  ws = await workspace();
  const { cert, key } = await selfSigned(ws.dir, 'test-token-issuer', { ec: true });
  const signingKey = await importPKCS8(await readFile(key, 'utf8'), 'ES256');
  const der = new X509Certificate(await readFile(cert)).raw.toString('base64');
  const port = await freePort();
  // The token server: Basic ci:s3cret may pull and push; anonymous callers may only pull.
  tokenServer = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope');
    const basic = /^Basic (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    const [user, password] = basic ? Buffer.from(basic, 'base64').toString().split(':') : ['anonymous', ''];
    asked.push({ user: user!, scopes });
    if (basic && !(user === 'ci' && password === 's3cret')) return void response.writeHead(401).end();
    const access = scopes.map((scope) => {
      const [type, name, actions] = scope.split(':');
      const allowed = (actions ?? '')
        .split(',')
        .filter((action) => action === 'pull' || (action === 'push' && user === 'ci'));
      return { type, name, actions: allowed };
    });
    void new SignJWT({ access })
      .setProtectedHeader({ alg: 'ES256', x5c: [der] })
      .setIssuer('test-issuer')
      .setAudience('test-registry')
      .setSubject(user!)
      .setIssuedAt()
      .setNotBefore(Math.floor(Date.now() / 1000) - 10)
      .setExpirationTime('5m')
      .setJti(randomUUID())
      .sign(signingKey)
      .then((token) =>
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 })),
      );
  });
  await new Promise<void>((resolve) => tokenServer.listen(port, '127.0.0.1', resolve));
  registry = await startRegistry(join(ws.dir, 'registry'), {
    token: {
      realm: `http://127.0.0.1:${port}/token`,
      service: 'test-registry',
      issuer: 'test-issuer',
      rootcertbundle: cert,
    },
  });
  const src = join(ws.dir, 'src');
  await publishImage(
    src,
    'tiny/v1.raw',
    await makeDisk(join(ws.dir, 'disk.raw'), { sizeMiB: 4, dataKiB: 512, label: 'token' }),
  );
  repoFile = await ws.writeRepo('demo', {
    name: 'demo',
    sources: { disk: { type: 'file', args: { root: src } } },
    templates: { tiny: { versions: { v1: { source: 'disk', handle: 'tiny/v1.raw', timestamp: 1700000000 } } } },
  });
  const fetched = await cli(['fetch', 'demo:tiny:v1', '--repo', repoFile, '--store', join(ws.dir, 'store'), '-q']);
  expect(fetched.exitCode, fetched.stderr).toBe(0);
  stored = fetched.stdout.trim();
}, 60_000);

afterAll(async () => {
  await registry?.stop();
  await new Promise((resolve) => tokenServer?.close(resolve));
  await ws?.cleanup();
});

describe('the Bearer token flow', () => {
  it('pushes with a login (tokens asked per scope, with Basic), fetches anonymously (a pull token), and an anonymous push is AUTH_FAILED', async () => {
    const creds = join(ws.dir, 'auth.json');
    await writeFile(
      creds,
      JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('ci:s3cret').toString('base64') } } }),
    );
    const target = `oci://${registry.host}/team/tiny:v1`;
    const pushed = await cli([
      'push',
      'demo:tiny:v1',
      target,
      '--repo',
      repoFile,
      '--store',
      join(ws.dir, 'store'),
      '-q',
      '--creds-file',
      creds,
    ]);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    expect(asked.filter((a) => a.user === 'ci').map((a) => a.scopes.join(' '))).toEqual(
      expect.arrayContaining(['repository:team/tiny:pull', 'repository:team/tiny:pull,push']),
    );
    // One token per scope set for the whole push: the rest of its requests reuse it.
    expect(asked.filter((a) => a.user === 'ci').length).toBeLessThanOrEqual(3);
    asked.length = 0;
    const fetched = await cli(['fetch', target, '--store', join(ws.dir, 'store-anonymous'), '-q']);
    expect(fetched.exitCode, fetched.stderr).toBe(0);
    expect(Buffer.compare(await readFile(fetched.stdout.trim()), await readFile(stored))).toBe(0);
    expect(asked).toEqual([{ user: 'anonymous', scopes: ['repository:team/tiny:pull'] }]);
    const refused = await cli([
      'push',
      'demo:tiny:v1',
      `oci://${registry.host}/team/other:v1`,
      '--repo',
      repoFile,
      '--store',
      join(ws.dir, 'store'),
      '-q',
      '--json',
    ]);
    expect(refused.exitCode).toBe(6);
    expect(lastJson(refused.stdout).error.code).toBe('AUTH_FAILED');
    const skopeo = await execa('skopeo', [
      'inspect',
      '--raw',
      '--tls-verify=false',
      `docker://${registry.host}/team/tiny:v1`,
    ]);
    expect(JSON.parse(skopeo.stdout)).toMatchObject({ artifactType: 'application/vnd.templates.image.v1' });
  });
});

// The dashboard at / (ui/): static files read once at start, served with a policy that lets the page load nothing from elsewhere.
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { TemplatesError } from '../../errors.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** Only this server: scripts, styles, requests and images; no frames, forms post only here. */
const POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** The package's ui/ directory: found upwards from this module (it runs from dist/server/routes/ or the CLI bundle's dist/bundle/). */
function uiDirectory(from = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from, up = 0; up < 5; dir = dirname(dir), up++) {
    if (existsSync(join(dir, 'ui', 'index.html'))) return join(dir, 'ui');
  }
  throw new TemplatesError('INTERNAL', `the dashboard's files (ui/index.html) are not above ${from}`, {
    hint: 'reinstall templates: its package includes ui/',
  });
}

export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const dir = uiDirectory();
  const files = new Map<string, { type: string; body: Buffer }>();
  for (const name of await readdir(dir)) {
    const type = TYPES[name.slice(name.lastIndexOf('.'))];
    if (type) files.set(name, { type, body: await readFile(join(dir, name)) });
  }
  const send = (name: string) => {
    const file = files.get(name);
    return file
      ? {
          ...file,
          headers: {
            'content-type': file.type,
            'content-security-policy': POLICY,
            'x-content-type-options': 'nosniff',
            'referrer-policy': 'no-referrer',
            'cache-control': 'no-cache',
          },
        }
      : undefined;
  };
  app.get('/', async (_request, reply) => {
    const page = send('index.html')!;
    return reply.headers(page.headers).send(page.body);
  });
  app.get('/ui/:file', async (request, reply) => {
    const name = (request.params as { file: string }).file;
    const file = name === 'index.html' ? undefined : send(name);
    if (!file)
      return reply
        .code(404)
        .send({ error: { code: 'NOT_FOUND', message: `no dashboard file ${JSON.stringify(name)}` } });
    return reply.headers(file.headers).send(file.body);
  });
}

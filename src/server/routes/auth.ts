// /auth_token: HTTP Basic (a user of the htpasswd file) in, a signed bearer token out; rate-limited per client.
import type { FastifyInstance } from 'fastify';
import { parseBasic } from '../auth.js';
import type { ServerDeps } from '../deps.js';

export interface AuthRouteOptions {
  /** Requests per client per window (default 10 per minute). */
  max: number;
  windowMs: number;
}

export async function authRoutes(app: FastifyInstance, deps: ServerDeps, limits: AuthRouteOptions): Promise<void> {
  const { users, tokens } = deps.auth;
  if (!users || !tokens) {
    app.get('/auth_token', async (_request, reply) =>
      reply
        .code(404)
        .send({ error: { code: 'NOT_FOUND', message: 'this server runs without --auth: no token is needed' } }),
    );
    return;
  }
  await app.register((await import('@fastify/rate-limit')).default, { global: false });
  app.get(
    '/auth_token',
    { config: { rateLimit: { max: limits.max, timeWindow: limits.windowMs } } },
    async (request, reply) => {
      const basic = parseBasic(request.headers.authorization);
      if (!basic || !(await users.check(basic.user, basic.password))) {
        deps.metrics.authFailures.inc({ reason: basic ? 'bad-password' : 'no-credentials' });
        // A page's script (X-Requested-With) handles the failure itself: a Basic challenge would make the browser prompt.
        if (!request.headers['x-requested-with']) reply.header('www-authenticate', 'Basic realm="templates"');
        return reply.code(401).send({
          error: { code: 'UNAUTHORIZED', message: "a user and password from the server's htpasswd file are needed" },
        });
      }
      return reply.send(await tokens.issue(basic.user));
    },
  );
}

// The fastify app: hooks for auth, logs and metrics, the routes, 405 for other methods, and errors as codes.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseBearer } from './auth.js';
import type { ServerDeps } from './deps.js';
import { sendError } from './http-status.js';
import { activityRoutes } from './routes/activity.js';
import { apiRoutes } from './routes/api.js';
import { authRoutes, type AuthRouteOptions } from './routes/auth.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { healthRoutes } from './routes/health.js';
import { jobsRoutes } from './routes/jobs.js';
import { reposRoutes } from './routes/repos.js';
import { statusRoutes } from './routes/status.js';

/** Paths anyone may read, whatever the auth settings. */
const PUBLIC = new Set(['/', '/healthz', '/readyz', '/metrics', '/auth_token']);
/** Path prefixes the server answers: another method there is 405, not 404. */
const KNOWN = [/^\/repos\//, /^\/api\/1\//, /^\/ui\//, /^\/(healthz|readyz|metrics|auth_token)?$/];
/** Largest request body accepted (the API takes small JSON). */
export const BODY_LIMIT = 64 * 1024;

/** The methods a known path answers (the Allow header of a 405). */
function allowed(path: string): string {
  if (path === '/api/1/jobs') return 'GET, HEAD, POST';
  if (/^\/api\/1\/jobs\/[^/]+$/.test(path)) return 'GET, HEAD, PATCH, DELETE';
  return 'GET, HEAD';
}

export interface AppOptions {
  authLimits: AuthRouteOptions;
}

function unauthorized(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ServerDeps,
  reason: string,
  message: string,
): FastifyReply {
  deps.metrics.authFailures.inc({ reason });
  const error =
    reason === 'expired'
      ? ', error="invalid_token", error_description="the token has expired"'
      : reason === 'invalid'
        ? ', error="invalid_token"'
        : '';
  // The realm is where tokens come from, as registries do: clients with Basic credentials get one there.
  return reply
    .code(401)
    .header('www-authenticate', `Bearer realm="${deps.baseUrl(request)}/auth_token"${error}`)
    .send({ error: { code: 'UNAUTHORIZED', message, hint: 'get a token: curl -u USER https://HOST/auth_token' } });
}

/** Undefined when the request may go on; else the reply already sent. */
async function checkAuth(
  request: FastifyRequest,
  reply: FastifyReply,
  deps: ServerDeps,
): Promise<FastifyReply | undefined> {
  const { tokens, anonymous } = deps.auth;
  const path = request.url.split('?', 1)[0]!;
  // The dashboard's page and files are public: it asks for credentials itself, and shows only what they open.
  if (!tokens || PUBLIC.has(path) || path.startsWith('/ui/')) return undefined;
  if (anonymous === 'read' && path.startsWith('/repos/')) return undefined;
  const token = parseBearer(request.headers.authorization);
  if (!token && anonymous === 'write') return undefined;
  if (!token) return unauthorized(request, reply, deps, 'no-token', 'this server needs a bearer token');
  const verdict = await tokens.verify(token);
  if ('refused' in verdict)
    return unauthorized(
      request,
      reply,
      deps,
      verdict.refused,
      verdict.refused === 'expired' ? 'the token has expired' : 'the token is not valid here',
    );
  (request as FastifyRequest & { user?: string }).user = verdict.user;
  return undefined;
}

export async function buildApp(deps: ServerDeps, options: AppOptions): Promise<FastifyInstance> {
  const { default: fastify } = await import('fastify');
  const app = fastify({
    logger: false,
    bodyLimit: BODY_LIMIT,
    routerOptions: { maxParamLength: 1024 },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    keepAliveTimeout: 5000,
  });
  // Slow or endless headers do not hold a connection (slowloris).
  app.server.headersTimeout = 10_000;
  app.server.requestTimeout = 60_000;
  const started = new WeakMap<FastifyRequest, bigint>();
  app.addHook('onRequest', async (request, reply) => {
    started.set(request, process.hrtime.bigint());
    const refused = await checkAuth(request, reply, deps);
    if (refused) return refused;
  });
  app.addHook('onResponse', async (request, reply) => {
    const seconds = Number(process.hrtime.bigint() - (started.get(request) ?? process.hrtime.bigint())) / 1e9;
    const route = request.routeOptions.url ?? 'unmatched';
    deps.metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    deps.metrics.duration.observe({ route, method: request.method }, seconds);
    deps.log({
      kind: 'request',
      method: request.method,
      path: request.url.split('?', 1)[0],
      status: reply.statusCode,
      seconds: Math.round(seconds * 1e4) / 1e4,
      client: request.ip,
      ...((request as { user?: string }).user ? { user: (request as { user?: string }).user } : {}),
    });
  });
  app.setErrorHandler((error, _request, reply) => {
    const status = (error as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500)
      return reply.code(status).send({
        error: { code: status === 413 ? 'BODY_TOO_LARGE' : 'BAD_REQUEST', message: (error as Error).message },
      });
    return sendError(reply, error);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0]!;
    if (request.method !== 'GET' && request.method !== 'HEAD' && KNOWN.some((pattern) => pattern.test(path))) {
      return reply
        .code(405)
        .header('allow', allowed(path))
        .send({ error: { code: 'METHOD_NOT_ALLOWED', message: `${request.method} is not allowed on ${path}` } });
    }
    return reply.code(404).send({
      error: { code: 'NOT_FOUND', message: `nothing at ${path}`, hint: 'see /repos/ and /api/1/repositories' },
    });
  });
  healthRoutes(app, deps);
  await authRoutes(app, deps, options.authLimits);
  reposRoutes(app, deps);
  apiRoutes(app, deps);
  jobsRoutes(app, deps);
  statusRoutes(app, deps);
  activityRoutes(app, deps);
  await dashboardRoutes(app);
  return app;
}

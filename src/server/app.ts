// The fastify app: hooks for auth, logs and metrics, the routes, 405 for other methods, and errors as codes.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TemplatesError } from '../errors.js';
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
import { simplestreamsRoutes } from './routes/simplestreams.js';
import { vagrantRoutes } from './routes/vagrant.js';
import { virtBuilderRoutes } from './routes/virt-builder.js';
import { statusRoutes } from './routes/status.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the bearer token names (undefined without auth, or for an anonymous request). */
    user: string | undefined;
  }
}

/** Paths anyone may read, whatever the auth settings. */
const PUBLIC = new Set(['/', '/healthz', '/readyz', '/metrics', '/auth_token']);
/** Largest request body accepted (the API takes small JSON). */
const BODY_LIMIT = 64 * 1024;

/** A route's URL pattern as a regular expression over paths: `:name` is one segment, `*` the rest. */
function routePattern(url: string): RegExp {
  const source = url
    .split(/(:[A-Za-z_]\w*|\*)/)
    .map((part) => (part === '*' ? '.*' : part.startsWith(':') ? '[^/]+' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`);
}

/** Every registered route's pattern and methods, gathered as fastify registers them: what a 405's Allow says. */
function routeTable(app: FastifyInstance): (path: string) => string[] {
  const routes: Array<{ pattern: RegExp; methods: string[] }> = [];
  app.addHook('onRoute', (route) => {
    routes.push({ pattern: routePattern(route.url), methods: [route.method].flat().map(String) });
  });
  return (path) => [...new Set(routes.filter((r) => r.pattern.test(path)).flatMap((r) => r.methods))];
}

export interface AppOptions {
  authLimits: AuthRouteOptions;
  /** PEM certificate chain and key: the app answers https only. */
  tls?: { cert: Buffer; key: Buffer };
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
  // Catalogues for clients that send no token (lxc) are read as the repositories are.
  if (
    anonymous === 'read' &&
    (path.startsWith('/repos/') ||
      path.startsWith('/streams/') ||
      path.startsWith('/vagrant/') ||
      path.startsWith('/virt-builder/'))
  )
    return undefined;
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
  request.user = verdict.user;
  return undefined;
}

export async function buildApp(deps: ServerDeps, options: AppOptions): Promise<FastifyInstance> {
  const { default: fastify } = await import('fastify');
  const app = fastify({
    // Incomplete requests are checked every second, so a slow header (slowloris) is cut at headersTimeout, not up to
    // 30 s (Node's default check interval) later.
    ...(options.tls
      ? { https: { cert: options.tls.cert, key: options.tls.key, connectionsCheckingInterval: 1000 } }
      : { http: { connectionsCheckingInterval: 1000 } }),
    logger: false,
    bodyLimit: BODY_LIMIT,
    routerOptions: { maxParamLength: 1024 },
    // Schemas check types as they are: "60" is not a number of seconds.
    ajv: { customOptions: { coerceTypes: false } },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    keepAliveTimeout: 5000,
  });
  // Slow or endless headers do not hold a connection (slowloris).
  app.server.headersTimeout = 10_000;
  app.server.requestTimeout = 60_000;
  app.decorateRequest('user', undefined);
  const methodsOf = routeTable(app);
  app.addHook('onRequest', async (request, reply) => {
    const refused = await checkAuth(request, reply, deps);
    if (refused) return refused;
  });
  app.addHook('onResponse', async (request, reply) => {
    const seconds = reply.elapsedTime / 1000;
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
      ...(request.user ? { user: request.user } : {}),
    });
  });
  // The one error handler: routes throw TemplatesError (its code picks the status), fastify its own 4xx; a body or
  // query that fails its route's schema is USAGE (400) saying which part and why.
  app.setErrorHandler((error, _request, reply) => {
    if (reply.sent) return reply;
    const invalid = error as { validation?: unknown; validationContext?: string; message?: string };
    if (invalid.validation) {
      return sendError(
        reply,
        new TemplatesError('USAGE', `the request ${invalid.message ?? 'is not valid'}`, {
          hint:
            invalid.validationContext === 'body'
              ? 'send a JSON object (Content-Type: application/json)'
              : 'see docs/jobs.md',
        }),
      );
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500)
      return reply.code(status).send({
        error: { code: status === 413 ? 'BODY_TOO_LARGE' : 'BAD_REQUEST', message: (error as Error).message },
      });
    return sendError(reply, error);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?', 1)[0]!;
    const methods = methodsOf(path);
    if (methods.length) {
      return reply
        .code(405)
        .header('allow', methods.join(', '))
        .send({ error: { code: 'METHOD_NOT_ALLOWED', message: `${request.method} is not allowed on ${path}` } });
    }
    return reply.code(404).send({
      error: { code: 'NOT_FOUND', message: `nothing at ${path}`, hint: 'see /repos/ and /api/1/repositories' },
    });
  });
  healthRoutes(app, deps);
  await authRoutes(app, deps, options.authLimits);
  reposRoutes(app, deps);
  simplestreamsRoutes(app, deps);
  vagrantRoutes(app, deps);
  virtBuilderRoutes(app, deps);
  apiRoutes(app, deps);
  jobsRoutes(app, deps);
  statusRoutes(app, deps);
  activityRoutes(app, deps);
  await dashboardRoutes(app);
  return app;
}

// GET /api/1/status: the latest scrape of every repository at its primary and mirrors (the JSON `templates status --json` prints).
import type { FastifyInstance } from 'fastify';
import type { ServerDeps } from '../deps.js';

export function statusRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.get('/api/1/status', async (request, reply) => {
    const report = await deps.status.report();
    if (!report) {
      return reply.code(404).send({
        error: {
          code: 'NOT_FOUND',
          message: 'status scraping is off on this server',
          hint: 'start templates serve with --scrape-interval SECONDS (> 0)',
        },
      });
    }
    const self = `${deps.baseUrl(request)}/api/1/status`;
    return reply.header('cache-control', 'no-store').send({ _links: { self: { href: self } }, ...report });
  });
}

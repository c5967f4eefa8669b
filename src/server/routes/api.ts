// /api/1: the usage API (reference 003's model, for templates) over the store's records, and the store's totals.
import type { FastifyInstance } from 'fastify';
import { TemplatesError } from '../../errors.js';
import type { ServerDeps } from '../deps.js';
import { sendError } from '../http-status.js';
import { segmentsBelow } from '../request-path.js';
import { API, parseHalQuery, usageResource } from '../usage.js';

const HAL = 'application/hal+json';

export function apiRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.get(`${API}/store`, async (_request, reply) => {
    const snapshot = await deps.inventory.get();
    return reply.send({
      entries: snapshot.entries.length,
      size: snapshot.size,
      disk_size: snapshot.diskSize,
      free: snapshot.free,
      total: snapshot.total,
      timestamp: snapshot.takenAt / 1000,
    });
  });
  // What each client format served since the server started: the counters /metrics exports, as JSON.
  app.get(`${API}/formats`, async (_request, reply) => {
    const [requests, bytes] = await Promise.all([deps.metrics.formatRequests.get(), deps.metrics.formatBytes.get()]);
    const byFormat = new Map<string, { format: string; requests: number; bytes: number }>();
    const row = (format: string) => {
      const known = byFormat.get(format) ?? { format, requests: 0, bytes: 0 };
      byFormat.set(format, known);
      return known;
    };
    for (const value of requests.values) row(String(value.labels.format)).requests = value.value;
    for (const value of bytes.values) row(String(value.labels.format)).bytes = value.value;
    return reply.send({
      formats: [...byFormat.values()].sort((a, b) => b.bytes - a.bytes || a.format.localeCompare(b.format)),
      _links: { self: { href: `${API}/formats` }, metrics: { href: '/metrics' } },
    });
  });
  const usage = async (request: import('fastify').FastifyRequest, reply: import('fastify').FastifyReply) => {
    const path = request.url.split('?', 1)[0]!;
    const below =
      path === `${API}/repositories`
        ? { ok: true as const, names: [] }
        : segmentsBelow(request.url, `${API}/repositories/`);
    if (!below.ok)
      return sendError(
        reply,
        new TemplatesError('USAGE', `bad path: ${below.why}`, { hint: `see ${API}/repositories?links=true` }),
      );
    const catalogue = await deps.catalogue();
    const resource = usageResource(
      await deps.inventory.get(),
      below.names,
      parseHalQuery(request.query as Record<string, unknown>),
      (name) => catalogue.repository(name)?.signature,
    );
    if (!resource)
      return sendError(
        reply,
        new TemplatesError('NOT_STORED', `nothing stored at ${path}`, { hint: `see ${API}/repositories?links=true` }),
      );
    return reply.type(HAL).send(resource);
  };
  app.get(`${API}/repositories`, usage);
  app.get(`${API}/repositories/*`, usage);
}

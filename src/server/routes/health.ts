// /healthz (alive), /readyz (store writable, enough free space, repositories loaded) and /metrics (Prometheus text).
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { tempDir } from '../../store/layout.js';
import type { ServerDeps } from '../deps.js';

/** Why the server is not ready, or undefined when it is. */
async function notReady(deps: ServerDeps): Promise<string | undefined> {
  const writable = await access(tempDir(deps.store.root), constants.W_OK).then(
    () => true,
    () => false,
  );
  if (!writable) return `the store ${deps.store.root} is not writable`;
  const { free } = await deps.inventory.get();
  if (free < deps.minFreeBytes) return `${free} bytes free in the store, below --min-free ${deps.minFreeBytes}`;
  if (deps.repositories.loadedAt() === undefined)
    return `repositories not loaded: ${deps.repositories.problem() ?? 'loading'}`;
  if (deps.shutdown.aborted) return 'shutting down';
  return undefined;
}

export function healthRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.get('/healthz', async (_request, reply) => reply.send({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const reason = await notReady(deps);
    return reason ? reply.code(503).send({ status: 'not ready', reason }) : reply.send({ status: 'ready' });
  });
  app.get('/metrics', async (_request, reply) => {
    const text = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(text);
  });
}

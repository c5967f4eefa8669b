// Server-Sent Events of one job: its state now, then each state change and progress, a heartbeat, until either side ends.
import type { EventEmitter } from 'node:events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Job } from '../jobs/model.js';
import type { JobEvents } from '../jobs/service.js';

/** A comment line this often keeps proxies from closing a quiet stream. */
const HEARTBEAT_MS = 15_000;

export interface JobEventSource {
  job: Job;
  events: EventEmitter<JobEvents>;
  show(job: Job): Record<string, unknown>;
  /** Aborted when the server starts shutting down: streams end so the shutdown does not wait for them. */
  closing: AbortSignal;
}

/** Takes over the reply: `event: state` or `event: progress`, `id:` a counter, `data:` the job as the API shows it. */
export function streamJobEvents(request: FastifyRequest, reply: FastifyReply, source: JobEventSource): void {
  reply.hijack();
  const out = reply.raw;
  out.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'keep-alive' });
  let counter = 0;
  const send = (kind: 'state' | 'progress', job: Job) => out.write(`event: ${kind}\nid: ${++counter}\ndata: ${JSON.stringify(source.show(job))}\n\n`);
  send('state', source.job);
  const onJob = (job: Job, kind: 'state' | 'progress') => {
    if (job.id === source.job.id) send(kind, job);
  };
  const heartbeat = setInterval(() => out.write(': keep-alive\n\n'), HEARTBEAT_MS);
  heartbeat.unref();
  const end = () => {
    clearInterval(heartbeat);
    source.events.off('job', onJob);
    source.closing.removeEventListener('abort', end);
    if (!out.writableEnded) out.end();
  };
  source.events.on('job', onJob);
  source.closing.addEventListener('abort', end, { once: true });
  request.raw.once('close', end);
  out.once('error', end);
}

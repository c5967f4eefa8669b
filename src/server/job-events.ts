// Server-Sent Events of one job: its state now, then each state change and progress, a heartbeat, until either side ends.
import type { EventEmitter } from 'node:events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Job } from '../jobs/model.js';
import type { JobEvents } from '../jobs/service.js';
import { openEventStream } from './sse.js';

export interface JobEventSource {
  job: Job;
  events: EventEmitter<JobEvents>;
  show(job: Job): Record<string, unknown>;
  /** Aborted when the server starts shutting down: streams end so the shutdown does not wait for them. */
  closing: AbortSignal;
}

/** Takes over the reply: `event: state` or `event: progress`, `id:` a counter, `data:` the job as the API shows it. */
export function streamJobEvents(request: FastifyRequest, reply: FastifyReply, source: JobEventSource): void {
  const onJob = (job: Job, kind: 'state' | 'progress') => {
    if (job.id === source.job.id) stream.send(kind, source.show(job));
  };
  const stream = openEventStream(request, reply, source.closing, () => source.events.off('job', onJob));
  stream.send('state', source.show(source.job));
  source.events.on('job', onJob);
}

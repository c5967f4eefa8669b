// /api/1/jobs: on-demand jobs (reference 002's model) over the job service; events as SSE; each job's result repository.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TemplatesError, isTemplatesError } from '../../errors.js';
import { JOB_STATES, jobJson, parseState, type Job } from '../../jobs/model.js';
import { readQcow2, type Qcow2Rendition } from '../../manage/qcow2.js';
import { isValidName } from '../../repository/reference.js';
import { entryName, parseEntryName } from '../../store/layout.js';
import type { ServerDeps } from '../deps.js';
import { jobRepositories, jobRepositoryJson } from '../job-repofile.js';
import { hrefName } from '../request-path.js';
import { streamJobEvents } from '../job-events.js';

const JOBS = '/api/1/jobs';

/** The user a request acts as: its token's, or "anonymous" where no token is needed. */
function requestUser(request: FastifyRequest): string {
  return request.user ?? 'anonymous';
}

function jobId(params: unknown): number {
  const text = (params as { id?: string }).id ?? '';
  if (!/^[1-9]\d{0,15}$/.test(text))
    throw new TemplatesError('JOB_NOT_FOUND', `no job ${JSON.stringify(text)}`, { hint: `see GET ${JOBS}` });
  return Number(text);
}

/** POST /api/1/jobs: what the schema lets through (the job service checks the rest: sizes, references, results). */
interface Submission {
  refs: string[];
  seconds_to_live?: number;
  results?: string[];
  label?: string | null;
}

const SUBMISSION_SCHEMA = {
  type: 'object',
  required: ['refs'],
  properties: {
    refs: { type: 'array', items: { type: 'string' } },
    seconds_to_live: { type: 'integer' },
    results: { type: 'array', items: { type: 'string' } },
    label: { type: ['string', 'null'] },
  },
} as const;

/** PATCH /api/1/jobs/ID. */
interface Renewal {
  seconds_to_live?: number;
}

const RENEWAL_SCHEMA = { type: 'object', properties: { seconds_to_live: { type: 'integer' } } } as const;

/** GET /api/1/jobs: every filter a string, checked by the handler for its own messages. */
type ListQuery = Partial<Record<'state' | 'owner' | 'label' | 'order_by' | 'page' | 'per_page', string>>;

const LIST_QUERY_SCHEMA = {
  type: 'object',
  properties: Object.fromEntries(
    ['state', 'owner', 'label', 'order_by', 'page', 'per_page'].map((name) => [name, { type: 'string' }]),
  ),
} as const;

function positiveInt(text: unknown, name: string, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new TemplatesError('USAGE', `${name} must be a whole number ≥ 1, not ${JSON.stringify(text)}`);
  return value;
}

/** Codes a submission is refused with as a bad request (400), whatever they mean elsewhere: nothing was queued. */
const BAD_SUBMISSION = new Set([
  'USAGE',
  'BAD_REFERENCE',
  'NO_REPOSITORIES',
  'REPO_NOT_FOUND',
  'TEMPLATE_NOT_FOUND',
  'VERSION_NOT_FOUND',
]);

function submitted(submit: () => Job): Job {
  try {
    return submit();
  } catch (error) {
    if (isTemplatesError(error) && BAD_SUBMISSION.has(error.code)) throw Object.assign(error, { httpStatus: 400 });
    throw error;
  }
}

/** A job as the API shows it: a done job links its result repositories (one per upstream repository, by name). */
export function jobResource(deps: ServerDeps, request: FastifyRequest, job: Job): Record<string, unknown> {
  if (job.state !== JOB_STATES.done) return jobJson(job, null);
  const base = `${deps.baseUrl(request)}/repos/jobs/${job.id}`;
  const repofiles = Object.fromEntries(jobRepositories(job).map((name) => [name, `${base}/${hrefName(name)}.json`]));
  return jobJson(job, { repofile: `${base}.json`, repofiles });
}

export function jobsRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const { jobs } = deps;
  const base = (request: FastifyRequest) => deps.baseUrl(request);
  const show = (request: FastifyRequest, job: Job) => jobResource(deps, request, job);
  const admin = (request: FastifyRequest) => jobs.admins.has(requestUser(request));

  app.post<{ Body: Submission }>(JOBS, { schema: { body: SUBMISSION_SCHEMA } }, async (request, reply) => {
    const input = request.body;
    const job = submitted(() =>
      jobs.service.submit(
        {
          refs: input.refs,
          secondsToLive: input.seconds_to_live ?? jobs.defaultSecondsToLive,
          ...(input.results !== undefined ? { results: input.results } : {}),
          ...(input.label !== undefined ? { label: input.label } : {}),
        },
        requestUser(request),
      ),
    );
    return reply.code(201).header('location', `${JOBS}/${job.id}`).send(show(request, job));
  });

  app.get<{ Querystring: ListQuery }>(JOBS, { schema: { querystring: LIST_QUERY_SCHEMA } }, async (request, reply) => {
    const query = request.query;
    const state = query.state === undefined || query.state === '' ? undefined : parseState(query.state);
    if (query.state && state === undefined)
      throw new TemplatesError(
        'USAGE',
        `state must be a code 0-4 or a name (wait, fetching, done, removed, failed), not ${JSON.stringify(query.state)}`,
      );
    const orderBy = query.order_by ?? '-id';
    if (orderBy !== 'id' && orderBy !== '-id')
      throw new TemplatesError('USAGE', `order_by must be id or -id, not ${JSON.stringify(orderBy)}`);
    const page = positiveInt(query.page, 'page', 1);
    const perPage = Math.min(positiveInt(query.per_page, 'per_page', 20), 100);
    const { items, total } = jobs.service.list({
      ...(state !== undefined ? { state } : {}),
      ...(query.owner ? { owner: query.owner } : {}),
      ...(query.label ? { label: query.label } : {}),
      orderBy,
      page,
      perPage,
    });
    const pages = Math.max(1, Math.ceil(total / perPage));
    const link = (n: number) => {
      const params = new URLSearchParams(
        Object.entries({ ...query, page: String(n), per_page: String(perPage) }).filter(
          (e): e is [string, string] => e[1] !== undefined,
        ),
      );
      return `${base(request)}${JOBS}?${params}`;
    };
    return reply.send({
      meta: {
        page,
        pages,
        per_page: perPage,
        total,
        first: link(1),
        last: link(pages),
        prev: page > 1 ? link(Math.min(page - 1, pages)) : null,
        next: page < pages ? link(page + 1) : null,
      },
      items: items.map((job) => show(request, job)),
    });
  });

  app.get(`${JOBS}/:id`, async (request, reply) => {
    return reply.send(show(request, jobs.service.get(jobId(request.params))));
  });

  app.patch<{ Body: Renewal }>(`${JOBS}/:id`, { schema: { body: RENEWAL_SCHEMA } }, async (request, reply) => {
    const ttl = request.body?.seconds_to_live ?? jobs.defaultSecondsToLive;
    const job = jobs.service.renew(jobId(request.params), ttl, requestUser(request), admin(request));
    return reply.send(show(request, job));
  });

  app.delete(`${JOBS}/:id`, async (request, reply) => {
    const job = await jobs.service.cancel(jobId(request.params), requestUser(request), admin(request));
    return reply.code(202).send(show(request, job));
  });

  app.get(`${JOBS}/:id/events`, async (request, reply) => {
    const job = jobs.service.get(jobId(request.params));
    streamJobEvents(request, reply, {
      job,
      events: jobs.service.events,
      show: (j) => show(request, j),
      closing: jobs.closing,
    });
    return reply;
  });

  /** A done job's result repository: `ID.json` is its first upstream repository's, `ID/REPO.json` any one's. */
  const resultRepository = async (request: FastifyRequest, reply: FastifyReply, id: number, repository?: string) => {
    const job = jobs.service.get(id);
    if (job.state !== JOB_STATES.done)
      throw new TemplatesError('JOB_CONFLICT', `job ${job.id} is not done, so it has no result repository`, {
        hint: `see GET ${JOBS}/${job.id}`,
      });
    const names = jobRepositories(job);
    const name = repository ?? names[0];
    if (name === undefined || !names.includes(name))
      throw new TemplatesError('REPO_NOT_FOUND', `job ${job.id} has no versions of a repository "${repository}"`, {
        hint: `its result repositories: ${names.join(', ')}`,
      });
    const renditions = new Map<string, Qcow2Rendition>();
    if (job.results.includes('qcow2')) {
      for (const ref of job.refs) {
        const key = parseEntryName(ref.version, isValidName);
        const rendition = key?.repository === name ? await readQcow2(deps.store, key) : undefined;
        if (key && rendition) renditions.set(entryName(key), rendition);
      }
    }
    return reply
      .type('application/json')
      .send(jobRepositoryJson(job, name, await deps.catalogue(), renditions, `${base(request)}/repos/`));
  };
  app.get('/repos/jobs/:file', async (request, reply) => {
    const match = /^(.*)\.json$/.exec((request.params as { file: string }).file);
    if (!match) throw new TemplatesError('JOB_NOT_FOUND', 'job repositories are /repos/jobs/ID.json');
    return resultRepository(request, reply, jobId({ id: match[1] }));
  });
  app.get('/repos/jobs/:id/:file', async (request, reply) => {
    const params = request.params as { id: string; file: string };
    const name = /^([A-Za-z0-9._+-]+)\.json$/.exec(params.file)?.[1];
    if (!name) throw new TemplatesError('REPO_NOT_FOUND', 'job repositories are /repos/jobs/ID/REPO.json');
    return resultRepository(request, reply, jobId(params), name);
  });
}

// /vagrant/REPO/TEMPLATE: a Vagrant box catalogue per template, and each version's libvirt box, from the stored images.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { type VagrantBoxVersion, vagrantCatalogue, vagrantProblem, vagrantVersions } from '../../catalogues/vagrant.js';
import { TemplatesError } from '../../errors.js';
import { entryName } from '../../store/layout.js';
import type { ServerDeps } from '../deps.js';
import { sendError } from '../http-status.js';
import type { ServedVersion } from '../served-version.js';
import { sendStored } from './repos.js';

/** How long a catalogue request waits for the newest version's pull and for boxes being made. */
const WAIT_MS = 50_000;
const BOX_FILE = 'libvirt.box';

const within = <T>(promise: Promise<T>, ms: number) =>
  Promise.race([promise, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms).unref())]);

function notFound(reply: FastifyReply, what: string): FastifyReply {
  return sendError(
    reply,
    new TemplatesError('TEMPLATE_NOT_FOUND', `${what} is not served here`, {
      hint: 'boxes are REPO/TEMPLATE as in GET /repos/REPO.json',
    }),
  );
}

/** The template's served versions (stored or upstream), oldest first. */
async function templateVersions(deps: ServerDeps, repository: string, template: string): Promise<ServedVersion[]> {
  return ((await deps.catalogue()).versions(repository) ?? []).filter((v) => v.key.template === template);
}

const escaped = (...parts: string[]) => parts.map(encodeURIComponent).join('/');

export function vagrantRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.route<{ Params: { repository: string; template: string } }>({
    method: ['GET', 'HEAD'],
    url: '/vagrant/:repository/:template',
    handler: async (request, reply) => {
      const { repository, template } = request.params;
      let versions = await templateVersions(deps, repository, template);
      const newest = versions.at(-1);
      if (!newest) return notFound(reply, `${repository}/${template}`);
      const problem = vagrantProblem(newest.key);
      if (problem) {
        deps.log({ kind: 'catalogue', format: 'vagrant', ref: `${repository}/${template}`, left_out: problem });
        return notFound(reply, `${repository}/${template} (${problem})`);
      }
      // HEAD (Vagrant's first look) answers at once; a GET brings the newest version in when the cache lacks it.
      if (request.method === 'HEAD') return reply.type('application/json').send();
      if (!newest.stored) {
        const outcome = await within(deps.pulls.start(newest.key).done, WAIT_MS);
        if (outcome?.ok) await deps.inventory.refreshEntry(newest.key);
        versions = await templateVersions(deps, repository, template);
        if (outcome && !outcome.ok && !versions.some((v) => v.stored)) return sendError(reply, outcome.error);
      }
      const numbers = vagrantVersions(versions.map((v) => ({ version: v.key.version, timestamp: v.timestamp })));
      const base = `${deps.baseUrl(request)}/vagrant/${escaped(repository, template)}`;
      // Boxes are made for the newest stored version; older ones are listed once theirs exist (each is a whole copy).
      const newestHeld = versions.filter((v) => v.stored).at(-1);
      const boxes = await Promise.all(
        versions
          .filter((v) => v.stored)
          .map(async (v): Promise<VagrantBoxVersion | undefined> => {
            const ready = await deps.renditions.readyBox(v.key);
            if (!ready && v !== newestHeld) return undefined;
            const box =
              ready ??
              (await within(
                deps.renditions.box(v.key, v.timestamp).catch(() => undefined),
                WAIT_MS,
              ));
            return box
              ? {
                  number: numbers.get(v.key.version)!,
                  name: v.key.version,
                  url: `${base}/${escaped(v.key.version)}/${BOX_FILE}`,
                  sha256: box.sha256,
                }
              : undefined;
          }),
      );
      const listed = boxes.filter((box): box is VagrantBoxVersion => box !== undefined);
      if (!listed.length)
        return reply
          .code(503)
          .header('retry-after', '30')
          .send({
            error: {
              code: 'PULL_IN_PROGRESS',
              message: `${repository}/${template} has no box ready yet`,
              hint: 'ask again in a minute',
            },
          });
      deps.metrics.formatRequests.inc({ format: 'vagrant' });
      return reply
        .type('application/json')
        .header('cache-control', 'no-cache')
        .send(vagrantCatalogue({ repository, template }, listed));
    },
  });
  app.get<{ Params: { repository: string; template: string; version: string; file: string } }>(
    '/vagrant/:repository/:template/:version/:file',
    async (request, reply) => {
      const { repository, template, version, file } = request.params;
      const key = { repository, template, version };
      const served = (await deps.catalogue()).version(key);
      if (!served?.stored || file !== BOX_FILE) return notFound(reply, `${entryName(key)}/${file}`);
      const box = (await deps.renditions.readyBox(key)) ?? (await deps.renditions.box(key, served.timestamp));
      return sendStored(request, reply, deps, box.path, file, 'vagrant');
    },
  );
}

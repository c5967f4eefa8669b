// /streams/v1/index.json, /streams/v1/images.json and /streams/images/…: the stored templates for LXD/Incus (simplestreams).
import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  INDEX_PATH,
  IMAGES_PATH,
  type SimplestreamsImage,
  imagesJson,
  indexJson,
  lxdArchitecture,
  serialOf,
  simplestreamsArch,
  simplestreamsProblem,
} from '../../catalogues/simplestreams.js';
import { TemplatesError } from '../../errors.js';
import type { LxdImage, LxdProperties } from '../../manage/lxd-image.js';
import type { VersionKey } from '../../repository/reference.js';
import { entryName } from '../../store/layout.js';
import { newestStored } from '../catalogue.js';
import type { ServerDeps } from '../deps.js';
import { sendError } from '../http-status.js';
import type { ServedVersion } from '../served-version.js';
import { sendStored } from './repos.js';

/** How long a catalogue request waits for renditions being made before it lists what is ready. */
const RENDER_WAIT_MS = 60_000;
const FILES = { 'disk-kvm.img': 'qcow2', 'lxd.tar.xz': 'metadata' } as const;
type ItemFile = keyof typeof FILES;

const filePath = (key: VersionKey, file: ItemFile) =>
  `streams/images/${[key.repository, key.template, key.version].map(encodeURIComponent).join('/')}/${file}`;

/** What metadata.yaml says of a stored version: its timestamp, its metadata's architecture, its names. */
function propertiesOf(version: ServedVersion): LxdProperties {
  const metadata = (version.stored?.entry.metadata ?? {}) as Record<string, unknown>;
  const arch = simplestreamsArch(metadata.arch ?? metadata.architecture);
  const { repository, template, version: name } = version.key;
  return {
    created: version.timestamp,
    architecture: lxdArchitecture(arch),
    os: repository,
    release: template,
    serial: serialOf(version.timestamp, name),
    description: `${repository} ${template} ${name}`,
  };
}

function listed(version: ServedVersion, image: LxdImage): SimplestreamsImage {
  const metadata = (version.stored?.entry.metadata ?? {}) as Record<string, unknown>;
  return {
    key: version.key,
    timestamp: version.timestamp,
    arch: simplestreamsArch(metadata.arch ?? metadata.architecture),
    description: `${version.key.repository} ${version.key.template} ${version.key.version}`,
    metadata: { path: filePath(version.key, 'lxd.tar.xz'), size: image.metadata.size, sha256: image.metadata.sha256 },
    disk: {
      path: filePath(version.key, 'disk-kvm.img'),
      size: image.qcow2.size,
      sha256: image.qcow2.hash.replace(/^sha256:/, ''),
    },
    fingerprint: image.fingerprint,
  };
}

/** The stored versions that can be listed (names LXD takes), once. */
async function storedVersions(deps: ServerDeps): Promise<ServedVersion[]> {
  const catalogue = await deps.catalogue();
  const out: ServedVersion[] = [];
  for (const name of catalogue.names())
    for (const version of catalogue.versions(name) ?? []) {
      if (!version.stored) continue;
      const problem = simplestreamsProblem(version.key);
      if (problem)
        deps.log({ kind: 'catalogue', format: 'simplestreams', ref: entryName(version.key), left_out: problem });
      else out.push(version);
    }
  return out;
}

/**
 * Every stored version whose LXD rendition is made; the newest of each template is made now when it is not (once,
 * however many ask) and waited for up to RENDER_WAIT_MS: a catalogue never names a file that is not there. Older
 * versions are not made for the catalogue (each rendition is a whole copy of the image).
 */
async function lxdImages(deps: ServerDeps): Promise<SimplestreamsImage[]> {
  const versions = await storedVersions(deps);
  const newest = new Set(newestStored(await deps.catalogue()).map((v) => entryName(v.key)));
  const images = await Promise.all(
    versions.map(async (version) => {
      const ready = await deps.renditions.readyLxd(version.key);
      if (ready) return listed(version, ready);
      if (!newest.has(entryName(version.key))) return undefined;
      const made = deps.renditions.lxd(version.key, propertiesOf(version)).catch(() => undefined);
      const image = await Promise.race([
        made,
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), RENDER_WAIT_MS).unref()),
      ]);
      return image ? listed(version, image) : undefined;
    }),
  );
  return images.filter((image): image is SimplestreamsImage => image !== undefined);
}

function notFound(reply: FastifyReply, what: string): FastifyReply {
  return sendError(
    reply,
    new TemplatesError('IMAGE_NOT_FOUND', `${what} is not served here`, {
      hint: `see /${INDEX_PATH}: its images are the templates this cache host holds`,
    }),
  );
}

export function simplestreamsRoutes(app: FastifyInstance, deps: ServerDeps): void {
  const catalogueRoute = (path: string, build: (images: SimplestreamsImage[], now: number) => unknown) =>
    app.get(`/${path}`, async (_request, reply) => {
      const body = build(await lxdImages(deps), deps.context.now());
      deps.metrics.formatRequests.inc({ format: 'simplestreams' });
      return reply.type('application/json').header('cache-control', 'no-cache').send(body);
    });
  catalogueRoute(INDEX_PATH, indexJson);
  catalogueRoute(IMAGES_PATH, imagesJson);
  app.get<{ Params: { repository: string; template: string; version: string; file: string } }>(
    '/streams/images/:repository/:template/:version/:file',
    {
      schema: {
        params: {
          type: 'object',
          properties: {
            repository: { type: 'string' },
            template: { type: 'string' },
            version: { type: 'string' },
            file: { type: 'string' },
          },
        },
      },
    },
    async (request, reply) => {
      const { repository, template, version, file } = request.params;
      const key = { repository, template, version };
      const served = (await deps.catalogue()).version(key);
      if (!served?.stored || !Object.hasOwn(FILES, file)) return notFound(reply, `${entryName(key)}/${file}`);
      const image = (await deps.renditions.readyLxd(key)) ?? (await deps.renditions.lxd(key, propertiesOf(served)));
      const path = FILES[file as ItemFile] === 'qcow2' ? image.qcow2.path : image.metadata.path;
      return sendStored(request, reply, deps, path, file, 'simplestreams');
    },
  );
}

// /virt-builder/index and its files: virt-builder's native index of the newest stored version of each template.
import type { FastifyInstance } from 'fastify';
import { type VirtBuilderTemplate, virtBuilderIndex } from '../../catalogues/virt-builder.js';
import { TemplatesError } from '../../errors.js';
import { entryName } from '../../store/layout.js';
import { newestStored } from '../catalogue.js';
import type { ServerDeps } from '../deps.js';
import { sendError } from '../http-status.js';
import { sendStored } from './repos.js';

/** How long the index waits for digests being taken before it lists what is ready. */
const WAIT_MS = 50_000;
const FILES = { 'disk.xz': 'xz', 'disk.raw': 'raw' } as const;

const text = (value: unknown) => (typeof value === 'string' && value ? value : undefined);

export function virtBuilderRoutes(app: FastifyInstance, deps: ServerDeps): void {
  app.get('/virt-builder/index', async (_request, reply) => {
    const templates = await Promise.all(
      newestStored(await deps.catalogue()).map(async (version): Promise<VirtBuilderTemplate | undefined> => {
        const file = await Promise.race([
          deps.renditions.virtBuilder(version.key).catch(() => undefined),
          new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), WAIT_MS).unref()),
        ]);
        if (!file) return undefined;
        const metadata = (version.stored?.entry.metadata ?? {}) as Record<string, unknown>;
        const { repository, template, version: name } = version.key;
        const osinfo = text(metadata.osinfo) ?? text(metadata.distro);
        return {
          key: version.key,
          timestamp: version.timestamp,
          file: `${[repository, template, name].map(encodeURIComponent).join('/')}/disk.${file.kind}`,
          size: file.diskSize,
          ...(file.kind === 'xz' ? { compressedSize: file.size } : {}),
          sha512: file.sha512,
          arch: text(metadata.arch) ?? text(metadata.architecture) ?? 'x86_64',
          ...(osinfo ? { osinfo } : {}),
        };
      }),
    );
    const { text: index, leftOut } = virtBuilderIndex(templates.filter((t): t is VirtBuilderTemplate => !!t));
    for (const t of leftOut)
      deps.log({ kind: 'catalogue', format: 'virt-builder', ref: entryName(t.key), left_out: 'section name' });
    deps.metrics.formatRequests.inc({ format: 'virt-builder' });
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(index);
  });
  app.get<{ Params: { repository: string; template: string; version: string; file: string } }>(
    '/virt-builder/:repository/:template/:version/:file',
    async (request, reply) => {
      const { repository, template, version, file } = request.params;
      const key = { repository, template, version };
      const served = (await deps.catalogue()).version(key);
      const wanted = FILES[file as keyof typeof FILES];
      const found = served?.stored && wanted ? await deps.renditions.virtBuilder(key) : undefined;
      if (!found || found.kind !== wanted)
        return sendError(
          reply,
          new TemplatesError('IMAGE_NOT_FOUND', `${entryName(key)}/${file} is not served here`, {
            hint: 'see /virt-builder/index',
          }),
        );
      return sendStored(request, reply, deps, found.path, file, 'virt-builder');
    },
  );
}

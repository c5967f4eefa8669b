// A job's result repository (pure): lago JSON listing exactly the job's pinned versions, served from this host.
import type { Job } from '../jobs/model.js';
import type { Qcow2Rendition } from '../manage/qcow2.js';
import { isValidName, type VersionKey } from '../repository/reference.js';
import { entryName, parseEntryName } from '../store/layout.js';
import { versionJson, type Catalogue } from './catalogue.js';

/**
 * Each pinned version under its template's name (`<repo>-<template>` when two repositories share a name), from the
 * source `cache` (this host's /repos/); a qcow2 rendition as `<name>-qcow2` from the source `cache-qcow2`.
 */
export function jobRepositoryJson(
  job: Job,
  catalogue: Catalogue,
  qcow2: Map<string, Qcow2Rendition>,
  reposUrl: string,
): string {
  const keys = job.refs
    .map((ref) => parseEntryName(ref.version, isValidName))
    .filter((key): key is VersionKey => key !== undefined);
  const shared = new Set(
    keys
      .map((k) => k.template)
      .filter(
        (t, i, all) =>
          all.indexOf(t) !== i || keys.some((o) => o.template === t && o.repository !== keys[i]!.repository),
      ),
  );
  const templates: Record<string, { versions: Record<string, unknown> }> = {};
  const versionsOf = (template: string) => {
    templates[template] ??= { versions: {} };
    return templates[template].versions;
  };
  for (const key of keys) {
    const served = catalogue.version(key);
    if (!served) continue;
    const name = shared.has(key.template) ? `${key.repository}-${key.template}` : key.template;
    const path = `${key.repository}/${key.template}/${key.version}`;
    versionsOf(name)[key.version] = versionJson(served, 'cache', `${path}/image`);
    const rendition = qcow2.get(entryName(key));
    if (rendition) {
      versionsOf(`${name}-qcow2`)[key.version] = {
        source: 'cache-qcow2',
        handle: `${path}/image.qcow2`,
        timestamp: served.timestamp,
        hash: rendition.hash,
        size: rendition.size,
        format: 'qcow2',
      };
    }
  }
  const sources = {
    cache: { type: 'http', args: { baseurl: reposUrl } },
    ...(qcow2.size ? { 'cache-qcow2': { type: 'http', args: { baseurl: reposUrl } } } : {}),
  };
  return `${JSON.stringify({ name: `job-${job.id}`, sources, templates }, null, 2)}\n`;
}

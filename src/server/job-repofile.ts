// A job's result repositories (pure): lago JSON listing exactly the job's pinned versions, one per upstream repository
// and under its name, served from this host.
import type { Job } from '../jobs/model.js';
import type { Qcow2Rendition } from '../manage/qcow2.js';
import { isValidName, type VersionKey } from '../repository/reference.js';
import { entryName, parseEntryName } from '../store/layout.js';
import { versionJson, type Catalogue } from './catalogue.js';

/** The upstream repositories of the job's pinned versions, in the order the job names them. */
export function jobRepositories(job: Job): string[] {
  const names = job.refs
    .map((ref) => parseEntryName(ref.version, isValidName)?.repository)
    .filter((name): name is string => name !== undefined);
  return [...new Set(names)];
}

/**
 * The job's pinned versions of one upstream `repository`, under that repository's name and their templates' names (a
 * neighbour's store entries are then the same whichever job brought them), from the source `cache` (this host's
 * /repos/); a qcow2 rendition as `<template>-qcow2` from the source `cache-qcow2`.
 */
export function jobRepositoryJson(
  job: Job,
  repository: string,
  catalogue: Catalogue,
  qcow2: Map<string, Qcow2Rendition>,
  reposUrl: string,
): string {
  const keys = job.refs
    .map((ref) => parseEntryName(ref.version, isValidName))
    .filter((key): key is VersionKey => key?.repository === repository);
  const templates: Record<string, { versions: Record<string, unknown> }> = {};
  const versionsOf = (template: string) => {
    templates[template] ??= { versions: {} };
    return templates[template].versions;
  };
  for (const key of keys) {
    const served = catalogue.version(key);
    if (!served) continue;
    const name = key.template;
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
  return `${JSON.stringify({ name: repository, sources, templates }, null, 2)}\n`;
}

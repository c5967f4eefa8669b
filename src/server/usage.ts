// The usage API's resources (pure): repositories, templates and versions from the store's records, as HAL with _links and _embedded.
import type { SignatureInfo } from '../trust/check.js';
import type { StoredSummary } from '../store/inventory.js';
import { keptFile } from '../store/record.js';
import type { StoreSnapshot } from './inventory-cache.js';
import { hrefName } from './request-path.js';
import type { VersionKey } from '../repository/reference.js';

export const API = '/api/1';

type Hal = Record<string, unknown>;

interface Level {
  /** Path below /api/1 of this resource, e.g. /repositories/r/templates/t. */
  path: string;
  /** The collection it belongs to, and its parent resource. */
  collection?: string;
  up?: string;
  props: Hal;
  /** The collection of children (…/templates, …/versions), when it has one. */
  children?: { path: string; list: () => Level[] };
  download?: string;
}

export interface HalQuery {
  /** Levels of children to embed: 0 none, Infinity all (`embed=true`). */
  embed: number;
  links: boolean;
}

/** `?embed=true|N&links=true` (reference 003): anything else is no embedding, no links. */
export function parseHalQuery(query: Record<string, unknown>): HalQuery {
  const embed = String(query.embed ?? '');
  const levels = embed === 'true' ? Infinity : /^\d+$/.test(embed) ? Number(embed) : 0;
  return { embed: levels, links: String(query.links ?? '') === 'true' };
}

const sizes = (entries: StoredSummary[]) => ({
  size: entries.reduce((sum, e) => sum + e.size, 0),
  disk_size: entries.reduce((sum, e) => sum + e.diskSize, 0),
});

function group(entries: StoredSummary[], by: (e: StoredSummary) => string): Map<string, StoredSummary[]> {
  const out = new Map<string, StoredSummary[]>();
  for (const entry of entries) out.set(by(entry), [...(out.get(by(entry)) ?? []), entry]);
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Path below /api/1 of a stored version's resource. */
const versionPath = (key: VersionKey) =>
  `/repositories/${hrefName(key.repository)}/templates/${hrefName(key.template)}/versions/${hrefName(key.version)}`;

/** The usage API's href of a stored version (the dashboard's figures link to it). */
export const versionHref = (key: VersionKey) => API + versionPath(key);

function versionLevel(entry: StoredSummary, templatePath: string): Level {
  const record = entry.entry.record;
  const kept = keptFile(record);
  const { repository, template, version } = entry.key;
  return {
    path: versionPath(entry.key),
    collection: `${templatePath}/versions`,
    up: templatePath,
    props: {
      name: version,
      size: entry.size,
      disk_size: entry.diskSize,
      fetched_at: entry.fetchedAt,
      last_used: entry.lastUsed,
      users: entry.dependents,
      digest: record?.stored?.digest ?? null,
      source: entry.source,
      server: entry.server,
      mirror: entry.mirror,
      format: record?.sourceFormat ?? null,
    },
    download: `/repos/${hrefName(repository)}/${hrefName(template)}/${hrefName(version)}/${kept && record?.sourceFormat !== 'raw' ? `image.${kept.compression}` : 'image'}`,
  };
}

function templateLevel(name: string, entries: StoredSummary[], repositoryPath: string): Level {
  const path = `${repositoryPath}/templates/${hrefName(name)}`;
  return {
    path,
    collection: `${repositoryPath}/templates`,
    up: repositoryPath,
    props: { name, ...sizes(entries) },
    children: { path: `${path}/versions`, list: () => entries.map((e) => versionLevel(e, path)) },
  };
}

/** A configured repository's signature state as the loader found it (docs/trust.md); undefined for one not configured. */
export type SignatureOf = (repository: string) => SignatureInfo | undefined;

function repositoryLevel(name: string, entries: StoredSummary[], signatureOf?: SignatureOf): Level {
  const path = `/repositories/${hrefName(name)}`;
  const signature = signatureOf?.(name);
  return {
    path,
    collection: '/repositories',
    up: '/repositories',
    props: { name, ...sizes(entries), ...(signature ? { signature } : {}) },
    children: {
      path: `${path}/templates`,
      list: () => [...group(entries, (e) => e.key.template)].map(([t, list]) => templateLevel(t, list, path)),
    },
  };
}

function rootLevel(snapshot: StoreSnapshot, signatureOf?: SignatureOf): Level {
  return {
    path: '/repositories',
    props: { timestamp: snapshot.takenAt / 1000 },
    children: {
      path: '/repositories',
      list: () =>
        [...group(snapshot.entries, (e) => e.key.repository)].map(([r, list]) => repositoryLevel(r, list, signatureOf)),
    },
  };
}

function render(level: Level, query: HalQuery, depth: number): Hal {
  const out: Hal = { ...level.props };
  const children = level.children && (query.links || depth < query.embed) ? level.children.list() : undefined;
  if (query.links) {
    out._links = {
      self: { href: API + level.path },
      ...(level.up ? { up: { href: API + level.up } } : {}),
      ...(level.collection ? { collection: { href: API + level.collection } } : {}),
      ...(children ? { items: children.map((child) => ({ href: API + child.path })) } : {}),
      ...(level.download ? { download: { href: level.download } } : {}),
    };
  }
  if (children && depth < query.embed)
    out._embedded = { items: children.map((child) => render(child, query, depth + 1)) };
  return out;
}

/** The collection of `level`'s children (…/templates, …/versions): no properties of its own, links and items. */
function collectionOf(level: Level): Level {
  return { path: level.children!.path, up: level.path, props: {}, children: level.children! };
}

/**
 * The resource at `segments` below /api/1/repositories (names decoded), or undefined when there is none:
 * [], [repo], [repo, 'templates'], [repo, 'templates', t], […, t, 'versions'], […, 'versions', v].
 */
export function usageResource(
  snapshot: StoreSnapshot,
  segments: string[],
  query: HalQuery,
  signatureOf?: SignatureOf,
): Hal | undefined {
  const [repository, templates, template, versions, version, ...extra] = segments;
  const find = (level: Level | undefined, name: string | undefined) =>
    level?.children?.list().find((child) => child.props.name === name);
  const root = rootLevel(snapshot, signatureOf);
  if (repository === undefined) return render(root, query, 0);
  const repo = find(root, repository);
  if (!repo || extra.length) return undefined;
  if (templates === undefined) return render(repo, query, 0);
  if (templates !== 'templates') return undefined;
  if (template === undefined) return render(collectionOf(repo), query, 0);
  const tpl = find(repo, template);
  if (!tpl) return undefined;
  if (versions === undefined) return render(tpl, query, 0);
  if (versions !== 'versions') return undefined;
  if (version === undefined) return render(collectionOf(tpl), query, 0);
  const ver = find(tpl, version);
  return ver ? render(ver, query, 0) : undefined;
}

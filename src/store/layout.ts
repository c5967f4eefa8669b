// Store layout: every path inside a store, computed by pure functions (the layout is documented in docs/store-layout.md).
//
// <root>/                                      one flat directory, lago-compatible
//   <repo>:<template>:<version>                the image, raw, visible only once verified
//   <repo>:<template>:<version>.hash           the hash the image was verified against
//   <repo>:<template>:<version>.metadata       the source's metadata JSON
//   <repo>:<template>:<version>.record.json    what this tool verified and recorded at publish (not in lago stores)
//   <repo>:<template>:<version>.users          lago's users file: dependents (`templates use`) and last use (its mtime)
//   <repo>:<template>:<version>.xz             the verified source .xz, kept when keepCompressed is on (serve), else absent
//   <repo>:<template>:<version>.zst            the verified source .zst instead, when that is what the source served
//   <repo>:<template>:<version>.qcow2          a qcow2 rendition, made once for a job that asks for one (serve), else absent
//   <repo>:<template>:<version>.qcow2.hash     its sha256, written before it
//   <repo>:<template>:<version>.lxd.tar.xz     LXD's metadata tarball for the qcow2 (simplestreams, serve), made with it
//   <repo>:<template>:<version>.lxd.json       its sha256 and size, and LXD's fingerprint of the pair; written before it
//   <repo>:<template>:<version>.box            a Vagrant libvirt box of the qcow2 (serve's Vagrant catalogues)
//   <repo>:<template>:<version>.box.json       its sha256 and size, written before it
//   <repo>:<template>:<version>.vb.json        SHA-512 of the file virt-builder gets (its .xz, else the image)
//   <repo>:<template>:<version>.caibx          its chunk index (casync's), made when it first seeds a delta fetch or kept from one
//   <repo>:<template>:<version>.lock           per-template lock: lago's, a regular file (0660, never removed) held with flock(2)
//   <repo>:<template>:<version>.tmp            lago's in-progress download (never written by us)
//   .tmp/<repo>:<template>:<version>/          our in-progress files for one entry (same filesystem, renamed into place)
//     <id>.*                                   one fetch attempt's files, removed when it ends
//     partial, partial.json                    an interrupted download kept for resume, and what it is (URL, validator)
//     partial.delta                            an interrupted delta fetch's image, a seed for the next try
//     lock-owner.json                          pid, host and time of the lock's holder, for LOCK_TIMEOUT messages
//   .repos/<sha256(url)[0:16]>.json            repository JSON fetched over HTTP, cached for offline use
//   .mirrors/health.json                       failures and latency seen per server (mirror order for the next fetch)
//   .oci/pushed.json                           blobs this store pushed, per registry: where a later push can mount them from
//   .trust/<repo>.json                         the highest signed revision and signing time accepted for a repository (rollback)
//   .serve/jobs.sqlite                         templates serve's on-demand jobs (SQLite, WAL)
//   .serve/holds/job-<id>                      exists while job <id> is live; named in the users file of each entry it holds
//   .serve/chunks/<repo>/<4 hex>/<id>.cacnk     chunks pulled from upstream for neighbours' delta fetches (casync's layout)
import { basename, join } from 'node:path';
import { crypto } from '../util/builtins.js';

import type { VersionKey } from '../repository/reference.js';

export type { VersionKey };

/** The fully qualified name lago used as the file name: `<repo>:<template>:<version>`. */
export function entryName(key: VersionKey): string {
  return `${key.repository}:${key.template}:${key.version}`;
}

export function imagePath(root: string, key: VersionKey): string {
  return join(root, entryName(key));
}

export function hashPath(root: string, key: VersionKey): string {
  return `${imagePath(root, key)}.hash`;
}

export function metadataPath(root: string, key: VersionKey): string {
  return `${imagePath(root, key)}.metadata`;
}

export function recordPath(root: string, key: VersionKey): string {
  return `${imagePath(root, key)}.record.json`;
}

/** lago's `.users`: `{"users": {PATH: …}, "last_access": seconds}`; its mtime is the entry's last use. */
export function usersPath(root: string, key: VersionKey): string {
  return `${imagePath(root, key)}.users`;
}

/** The verified `.xz` (or `.zst`) the image came from, kept beside it when the store keeps compressed copies (`templates serve`). */
export function compressedPath(root: string, key: VersionKey, compression: 'xz' | 'zst' = 'xz'): string {
  return `${imagePath(root, key)}.${compression}`;
}

/** The qcow2 rendition of an entry (jobs with results qcow2), and its digest. */
export function qcow2Path(root: string, key: VersionKey): string {
  return `${imagePath(root, key)}.qcow2`;
}

export function qcow2HashPath(root: string, key: VersionKey): string {
  return `${imagePath(root, key)}.qcow2.hash`;
}

/** LXD's metadata tarball of an entry's qcow2 rendition (simplestreams), and what is known of it. */
export function lxdMetadataPath(root: string, key: VersionKey): string {
  return `${imagePath(root, key)}.lxd.tar.xz`;
}

export function lxdRecordPath(root: string, key: VersionKey): string {
  return `${imagePath(root, key)}.lxd.json`;
}

/** A Vagrant libvirt box of the entry (serve's Vagrant catalogues), and its sha256 and size. */
export function boxPath(root: string, key: VersionKey): string {
  return `${imagePath(root, key)}.box`;
}

export function boxRecordPath(root: string, key: VersionKey): string {
  return `${imagePath(root, key)}.box.json`;
}

/** The SHA-512 of the file virt-builder gets for the entry (serve's virt-builder index). */
export function virtBuilderRecordPath(root: string, key: VersionKey): string {
  return `${imagePath(root, key)}.vb.json`;
}

/** The files made from an entry for other clients (serve's catalogues): counted in its sizes, removed with it. */
export const RENDITION_SUFFIXES = ['.qcow2', '.lxd.tar.xz', '.box'] as const;

/** The entry's chunk index (casync's `.caibx`), made once when it first seeds a delta fetch (docs/delta.md). */
export function chunkIndexPath(root: string, key: VersionKey): string {
  return `${imagePath(root, key)}.caibx`;
}

/** lago's own in-progress download. */
export function lagoTempPath(root: string, key: VersionKey): string {
  return `${imagePath(root, key)}.tmp`;
}

/** Every file an entry has beside its image, in the order they are removed after it. */
export const SIDECAR_SUFFIXES = [
  '.xz',
  '.zst',
  '.qcow2',
  '.qcow2.hash',
  '.lxd.tar.xz',
  '.lxd.json',
  '.box',
  '.box.json',
  '.vb.json',
  '.hash',
  '.metadata',
  '.record.json',
  '.users',
  '.caibx',
] as const;

/** Suffixes of the files beside images: a name ending in one is never an image (a version named `v1.hash` cannot be listed). */
const NOT_AN_IMAGE =
  /\.(xz|zst|qcow2|hash|metadata|record\.json|lxd\.json|box|box\.json|vb\.json|users|lock|tmp|caibx)$/;

/** The key of a store file name that is an image (`<repo>:<template>:<version>` of valid names), else undefined. */
export function parseEntryName(name: string, isValidName: (part: string) => boolean): VersionKey | undefined {
  if (NOT_AN_IMAGE.test(name)) return undefined;
  const parts = name.split(':');
  if (parts.length !== 3 || !parts.every(isValidName)) return undefined;
  const [repository, template, version] = parts as [string, string, string];
  return { repository, template, version };
}

export function lockPath(root: string, key: VersionKey): string {
  return `${imagePath(root, key)}.lock`;
}

export function tempDir(root: string): string {
  return join(root, '.tmp');
}

/** One entry's temp directory: only the holder of the entry's lock writes or cleans it. */
export function entryTempDir(root: string, key: VersionKey): string {
  return join(tempDir(root), entryName(key));
}

/** Prefix shared by every temp file of one fetch attempt; `id` keeps attempts apart. */
export function tempPrefix(root: string, key: VersionKey, id: string): string {
  return join(entryTempDir(root, key), id);
}

/** The bytes of an interrupted download, kept for the next fetch to resume. */
export function partialPath(root: string, key: VersionKey): string {
  return join(entryTempDir(root, key), 'partial');
}

/** An interrupted delta fetch's image, kept as a seed for the next try (its chunks are checked against their ids). */
export function deltaPartialPath(root: string, key: VersionKey): string {
  return join(entryTempDir(root, key), 'partial.delta');
}

/** Chunks `templates serve` pulled from upstream for neighbours (one per id, checked), per repository (docs/delta.md). */
export function servedChunkRoot(root: string, repository: string): string {
  return join(root, '.serve', 'chunks', repository);
}

/** Who holds the entry's lock (written by the holder; see store/lock.ts). */
export function lockOwnerPath(root: string, key: VersionKey): string {
  return join(entryTempDir(root, key), 'lock-owner.json');
}

/** What `partial` holds: its URL and validator (see fetch/partial.ts). */
export function partialStatePath(root: string, key: VersionKey): string {
  return join(entryTempDir(root, key), 'partial.json');
}

/** templates serve's jobs database (SQLite; its -wal and -shm files beside it). */
export function jobsDatabasePath(root: string): string {
  return join(root, '.serve', 'jobs.sqlite');
}

/** The file that stands for a live job in the users files of the entries it holds (a dependent while it exists). */
export function jobHoldPath(root: string, id: number): string {
  return join(root, '.serve', 'holds', `job-${id}`);
}

/** A dependent as people read it: `job 7 (templates serve)` for a job's hold, else its path. */
export function describeDependent(root: string, path: string): string {
  const id = /^job-(\d+)$/.exec(basename(path))?.[1];
  return id !== undefined && path === jobHoldPath(root, Number(id)) ? `job ${id} (templates serve)` : path;
}

/** Blobs this store pushed to registries (`{host: {digest: repository}}`): a push to another repository mounts them. */
export function pushedBlobsPath(root: string): string {
  return join(root, '.oci', 'pushed.json');
}

/** The highest signed revision and signing time this store accepted for a repository name (a replayed older copy is refused). */
export function trustStatePath(root: string, repository: string): string {
  return join(root, '.trust', `${repository}.json`);
}

/** What this store saw of each server: failures and latency, read to order a source's primary and mirrors. */
export function serverHealthPath(root: string): string {
  return join(root, '.mirrors', 'health.json');
}

export function repoCacheDir(root: string): string {
  return join(root, '.repos');
}

export function repoCachePath(root: string, url: string): string {
  const id = crypto().createHash('sha256').update(url).digest('hex').slice(0, 16);
  return join(repoCacheDir(root), `${id}.json`);
}

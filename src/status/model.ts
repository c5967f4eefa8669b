// The typed result of a status scrape (reference 000's shape): servers, each with the repositories it serves.
import type { CopySignature } from '../trust/check.js';

/** How a mirror's copy compares with the primary's. */
export type SyncState = 'primary' | 'in-sync' | 'behind' | 'diverged' | 'down' | 'unknown';

/** One image or `.hash` checked with HEAD by `--deep`. */
export interface DeepCheck {
  ref: string;
  file: 'image' | 'hash';
  url: string;
  present: boolean;
  size: number | null;
  /** The size on the primary, on a mirror (null on the primary or when unknown there). */
  primarySize: number | null;
  ok: boolean;
}

/** One repository as one server serves it. */
export interface RepositoryStatus {
  name: string;
  server: string;
  role: 'primary' | 'mirror';
  /** The repository JSON's URL on this server (or the local path). */
  url: string;
  reachable: boolean;
  httpStatus: number | null;
  latencySeconds: number | null;
  /** What failed, when the copy could not be read. */
  error: { code: string; message: string } | null;
  /** The `revision` integer `templates index` writes, else null. */
  revision: number | null;
  /** sha256 of the JSON bytes: the revision of a repository without one. */
  digest: string | null;
  /** `published` (seconds since the epoch), else null. */
  published: number | null;
  lastModified: string | null;
  etag: string | null;
  templates: number;
  versions: number;
  /** The newest version's timestamp (seconds). */
  newestVersionTimestamp: number | null;
  /** The sum of the declared sizes of every version (reference 000's root size). */
  rootSizeBytes: number;
  sync: { state: SyncState; behindRevisions: number | null; since: number | null };
  /** This copy's `.minisig` checked with the keys trusted for the repository (unchecked: none is); null when unreadable. */
  signature: CopySignature | null;
  /** `--deep` only: the newest version of each template, image and `.hash`. */
  deep: DeepCheck[] | null;
  /** Reachable, readable, in sync (a mirror), signed when a key is trusted for it, and complete (`--deep`). */
  healthy: boolean;
}

export interface ServerStatus {
  /** host[:port][/path] of the server's base URL, or `local` for a repository file. */
  name: string;
  repositories: RepositoryStatus[];
}

export interface StatusReport {
  scrapedAt: string;
  servers: ServerStatus[];
  healthy: boolean;
}

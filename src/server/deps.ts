// What the routes share: the store, the repositories, the inventory, pulls, metrics and the auth policy of one server.
import type { FastifyRequest } from 'fastify';
import type { Context } from '../context.js';
import type { ChunkSource } from '../fetch/chunk-source.js';
import type { JobService } from '../jobs/service.js';
import type { PrunePolicy } from '../manage/prune-plan.js';
import type { RepositorySet } from '../repository/set.js';
import type { Store } from '../store/store.js';
import type { Activity } from './activity.js';
import type { Tokens, Users } from './auth.js';
import type { Catalogue } from './catalogue.js';
import type { InventoryCache } from './inventory-cache.js';
import type { Metrics } from './metrics.js';
import type { Pulls } from './pulls.js';
import type { Renditions } from './renditions.js';
import type { StatusWatch } from './status-watch.js';

export interface RepositoryState {
  /** The repositories as last loaded (empty until the first load succeeds). */
  current(): RepositorySet;
  /** When they were last loaded (ms), or undefined. */
  loadedAt(): number | undefined;
  /** Why the last load failed, when it did. */
  problem(): string | undefined;
}

export interface AuthPolicy {
  users?: Users;
  tokens?: Tokens;
  /** "read": the /repos/ files and JSON need no token; "write": nothing does (jobs are then owned by "anonymous"). */
  anonymous: 'none' | 'read' | 'write';
}

interface JobsDeps {
  /** The only door to jobs: reads and changes alike. */
  service: JobService;
  /** Users who may renew and remove anyone's jobs (the config's `admins`). */
  admins: Set<string>;
  /** seconds_to_live when a request gives none. */
  defaultSecondsToLive: number;
  /** Aborted when shutdown begins (event streams end). */
  closing: AbortSignal;
}

export interface ServerDeps {
  store: Store;
  context: Context;
  repositories: RepositoryState;
  inventory: InventoryCache;
  /** The served versions as of the current repositories and store snapshot. */
  catalogue(): Promise<Catalogue>;
  pulls: Pulls;
  /** What serve makes of stored versions for other clients' catalogues (docs/catalogues.md). */
  renditions: Renditions;
  /** casync's index and chunks of every served version (docs/delta.md). */
  chunks: ChunkSource;
  /** Fetches and pulls in flight and lately ended (the dashboard). */
  activity: Activity;
  jobs: JobsDeps;
  metrics: Metrics;
  /** The mirrors-and-status scrape (templates status), run every --scrape-interval. */
  status: StatusWatch;
  auth: AuthPolicy;
  /** The base URL neighbours use (no trailing slash): --public-url, else the request's own host. */
  baseUrl(request: FastifyRequest): string;
  minFreeBytes: number;
  prunePolicy: PrunePolicy;
  /** Aborted when the server shuts down. */
  shutdown: AbortSignal;
  log(line: Record<string, unknown>): void;
}

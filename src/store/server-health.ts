// What this store has seen of each server (failures, latency), kept in the store so the next process orders mirrors well.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';

/** One server (a base URL) as seen from this store. */
interface ServerState {
  /** Failures since its last success. */
  failures: number;
  lastFailure?: number;
  lastSuccess?: number;
  /** Time to the first response byte, smoothed (ms). */
  latencyMs?: number;
}

export interface ServerHealth {
  /**
   * `servers` (the primary first) ordered for trying: servers without a recent failure first (the primary, then
   * mirrors by latency), then the failing ones, fewest failures first. `prefer` (where a kept partial came from)
   * leads when it is healthy.
   */
  order(servers: readonly string[], prefer?: string): Promise<string[]>;
  success(server: string, latencyMs?: number): void;
  failure(server: string): void;
  /** The state of one server, as last recorded. */
  get(server: string): ServerState | undefined;
  /** Writes what changed (best effort: a read-only store just forgets). */
  save(): Promise<void>;
}

/** A failure older than this no longer counts against a server. */
export const FAILURE_MEMORY_MS = 10 * 60_000;

export function createServerHealth(path: string | undefined, now: () => number): ServerHealth {
  const states = new Map<string, ServerState>();
  const changed = new Set<string>();
  let loaded: Promise<void> | undefined;
  const read = async (): Promise<Record<string, ServerState>> => {
    if (!path) return {};
    try {
      const data = JSON.parse(await readFile(path, 'utf8')) as { servers?: Record<string, ServerState> };
      return typeof data.servers === 'object' && data.servers !== null ? data.servers : {};
    } catch {
      return {};
    }
  };
  const load = () =>
    (loaded ??= read().then((servers) => {
      for (const [server, state] of Object.entries(servers)) if (!states.has(server)) states.set(server, state);
    }));
  const failing = (state: ServerState | undefined) =>
    state !== undefined &&
    state.failures > 0 &&
    state.lastFailure !== undefined &&
    now() - state.lastFailure < FAILURE_MEMORY_MS;
  const update = (server: string, change: (state: ServerState) => ServerState) => {
    states.set(server, change(states.get(server) ?? { failures: 0 }));
    changed.add(server);
  };
  return {
    async order(servers, prefer) {
      await load();
      const rank = (server: string) => {
        const state = states.get(server);
        const index = servers.indexOf(server);
        if (failing(state)) return [1, state!.failures, state!.lastFailure!, index];
        const first = server === prefer ? 0 : index === 0 ? 1 : 2;
        return [0, first, state?.latencyMs ?? Number.MAX_SAFE_INTEGER, index];
      };
      return [...servers].sort((a, b) => {
        const [x, y] = [rank(a), rank(b)];
        for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
        return 0;
      });
    },
    success(server, latencyMs) {
      update(server, (state) => ({
        failures: 0,
        ...(state.lastFailure !== undefined ? { lastFailure: state.lastFailure } : {}),
        lastSuccess: now(),
        ...(latencyMs !== undefined
          ? {
              latencyMs: Math.round(
                state.latencyMs === undefined ? latencyMs : state.latencyMs * 0.7 + latencyMs * 0.3,
              ),
            }
          : state.latencyMs !== undefined
            ? { latencyMs: state.latencyMs }
            : {}),
      }));
    },
    failure(server) {
      update(server, (state) => ({ ...state, failures: state.failures + 1, lastFailure: now() }));
    },
    get: (server) => states.get(server),
    async save() {
      if (!path || changed.size === 0) return;
      const current = await read();
      for (const server of changed) current[server] = states.get(server)!;
      changed.clear();
      await mkdir(dirname(path), { recursive: true })
        .then(() => writeFileAtomic(path, `${JSON.stringify({ schema: 1, servers: current }, null, 2)}\n`))
        .catch(() => undefined);
    },
  };
}

// The farm's neighbours: processes that fetch templates from the cache host, some through jobs, each into a store of its own.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

type Outcome = 'verified' | 'error' | 'killed';

export interface FetchRecord {
  neighbour: number;
  ref: string;
  /** ms since the farm started. */
  at: number;
  ms: number;
  outcome: Outcome;
  /** The error's code (the `[CODE]` that ends the CLI's error line); `UNTYPED` when it printed none. */
  code?: string;
  /** The last line the failed command printed on stderr. */
  message?: string;
  /** The cache host held the version when the fetch began and the neighbour did not. */
  cacheHit: boolean;
  via: 'repo' | 'job';
  /** Bytes reused from the neighbour's own store, when the fetch was a delta. */
  reusedBytes?: number;
}

export interface NeighbourOptions {
  bin: string;
  work: string;
  count: number;
  /** The cache host's URL as neighbours reach it (through their link). */
  server: string;
  /** The refs wanted at `now` (ms since the start), newest demand last. */
  demand(now: number): string[];
  /** Versions the cache host is known to hold. */
  cacheHas(ref: string): boolean;
  /** A version the cache host served whole: a neighbour fetched it. */
  served(ref: string): void;
  /** A job the cache host acknowledged (its id). */
  jobCreated(id: number): void;
  now(): number;
  random: () => number;
}

export interface Neighbours {
  records: FetchRecord[];
  stores: string[];
  /** SIGKILLs one fetch (or job wait) that has run at least 200 ms; false when none has. */
  killOne(): boolean;
  /** Resolves once every loop has seen `stop` and its fetch ended. */
  run(stop: AbortSignal): Promise<void>;
}

interface Running {
  child: ChildProcess;
  started: number;
  killed: boolean;
  hung: boolean;
}

/** The error code a failed CLI run printed: the last `[CODE]` of its stderr. */
export function errorCode(stderr: string): string {
  const codes = [...stderr.matchAll(/\[([A-Z][A-Z0-9_]+)\]/g)];
  return codes.at(-1)?.[1] ?? 'UNTYPED';
}

const failure = (stderr: string) => ({
  code: errorCode(stderr),
  message: stderr.trim().split('\n').at(-1)?.slice(0, 400) ?? '',
});

export function createNeighbours(options: NeighbourOptions): Neighbours {
  const records: FetchRecord[] = [];
  const running = new Map<number, Running>();
  /** Every command running, killable or not (the farm's end kills what hangs). */
  const all = new Set<Running>();
  const stores = Array.from({ length: options.count }, (_, i) => join(options.work, `n${i}`));
  const held = stores.map(() => new Set<string>());

  /** One CLI run; resolves to its exit code and stderr. */
  const cli = (n: number, args: string[], killable = true) =>
    new Promise<{ code: number | null; stdout: string; stderr: string; killed: boolean }>((resolve) => {
      const child = spawn(process.execPath, [options.bin, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH ?? '',
          HOME: stores[n]!,
          TEMPLATES_STORE: join(stores[n]!, 'store'),
          TEMPLATES_LOCK_STALE_SECONDS: '2',
        },
      });
      const entry: Running = { child, started: performance.now(), killed: false, hung: false };
      all.add(entry);
      if (killable) running.set(n, entry);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      child.on('close', (code) => {
        running.delete(n);
        all.delete(entry);
        if (entry.hung) stderr += '\nfarm: still running 90 s after the farm stopped: killed [HUNG]';
        resolve({ code, stdout, stderr, killed: entry.killed });
      });
    });

  const pick = <T>(items: T[]): T => items[Math.floor(options.random() * items.length)]!;

  const fetchOnce = async (n: number, ref: string, via: 'repo' | 'job') => {
    const at = options.now();
    const cacheHit = options.cacheHas(ref) && !held[n]!.has(ref);
    const [repo, template] = ref.split(':');
    let repoUrl = `${options.server}/repos/${repo}.json`;
    const started = performance.now();
    const record = (outcome: Outcome, extra: Partial<FetchRecord> = {}) =>
      records.push({ neighbour: n, ref, at, ms: performance.now() - started, outcome, cacheHit, via, ...extra });
    if (via === 'job') {
      const job = await cli(n, [
        'job',
        'create',
        '--server',
        options.server,
        '--ttl',
        '60s',
        '--wait',
        '--timeout',
        '180s',
        ref,
      ]);
      const id = /\/repos\/jobs\/(\d+)\.json/.exec(job.stdout)?.[1];
      if (id) options.jobCreated(Number(id));
      if (job.killed) return record('killed');
      if (job.code !== 0 || !id) return record('error', failure(job.stderr));
      repoUrl = job.stdout.trim().split('\n').pop()!;
    }
    const args = ['fetch', '-q', '--json', '--repo', repoUrl, `${repo}:${template}:${ref.split(':')[2]}`];
    const result = await cli(n, args);
    if (result.killed) return record('killed');
    if (result.code !== 0) return record('error', failure(result.stderr));
    held[n]!.add(ref);
    options.served(ref);
    let reusedBytes: number | undefined;
    try {
      reusedBytes = (JSON.parse(result.stdout.trim().split('\n')[0]!) as { delta?: { reusedBytes: number } }).delta
        ?.reusedBytes;
    } catch {
      // not JSON: counted as verified all the same (exit 0 means the digest matched)
    }
    return record('verified', reusedBytes !== undefined ? { reusedBytes } : {});
  };

  const loop = async (n: number, stop: AbortSignal) => {
    await mkdir(stores[n]!, { recursive: true });
    // Every eighth neighbour asks through jobs, as a CI pipeline does; the rest fetch from /repos/.
    const via = n % 8 === 7 ? 'job' : 'repo';
    while (!stop.aborted) {
      const wanted = options.demand(options.now());
      // Newer demand is likelier: a new version is what a farm fetches most.
      const ref = wanted[Math.min(wanted.length - 1, Math.floor(Math.sqrt(options.random()) * wanted.length))]!;
      if (held[n]!.has(ref)) {
        // Gone from this host (a rebuilt runner): the next fetch comes from the cache host again.
        if (options.random() < 0.5) {
          await cli(n, ['rm', ref], false);
          held[n]!.delete(ref);
        } else {
          await sleep(200 + options.random() * 800);
          continue;
        }
      }
      await fetchOnce(n, ref, via);
      await sleep(300 + options.random() * 1500);
    }
  };

  return {
    records,
    stores: stores.map((dir) => join(dir, 'store')),
    killOne() {
      const candidates = [...running.values()].filter((r) => performance.now() - r.started >= 200 && !r.killed);
      if (!candidates.length) return false;
      const victim = pick(candidates);
      victim.killed = true;
      victim.child.kill('SIGKILL');
      return true;
    },
    async run(stop) {
      // A command still running 90 s after the stop hangs: it is killed and its fetch counted as a HUNG error.
      const reaper = new Promise<void>((resolve) =>
        stop.addEventListener('abort', () => {
          const timer = setTimeout(() => {
            for (const entry of all) {
              entry.hung = true;
              entry.child.kill('SIGKILL');
            }
          }, 90_000);
          done.then(() => clearTimeout(timer));
          resolve();
        }),
      );
      const done = Promise.all(stores.map((_, n) => loop(n, stop)));
      await Promise.all([done, reaper]);
    },
  };
}

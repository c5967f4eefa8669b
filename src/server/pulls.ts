// Pull-through: one upstream fetch per missing version however many ask, with its progress, for followers and metrics.
import { EventEmitter, once } from 'node:events';
import type { Context } from '../context.js';
import { TemplatesError, asTemplatesError } from '../errors.js';
import { fetchTemplate } from '../fetch/fetch.js';
import type { FetchResult } from '../fetch/result.js';
import type { VersionKey } from '../repository/reference.js';
import type { RepositorySet } from '../repository/set.js';
import { entryName } from '../store/layout.js';
import type { Store } from '../store/store.js';

export type PullOutcome = { ok: true; result: FetchResult } | { ok: false; error: TemplatesError };

export interface PullState {
  /** The upstream URL being read, once the download started. */
  location?: string;
  bytes: number;
  total?: number;
  /** The whole `.xz` arrived and matched the repository's digest: followers may end before decoding does. */
  compressedVerified?: boolean;
  outcome?: PullOutcome;
}

export class Pull extends EventEmitter<{ progress: []; end: [PullOutcome] }> {
  readonly state: PullState = { bytes: 0 };
  readonly startedAt: number;
  /** Settles when the fetch ends; never rejects. */
  readonly done: Promise<PullOutcome>;

  constructor(
    readonly ref: string,
    readonly key: VersionKey,
    startedAt: number,
    run: (pull: Pull) => Promise<FetchResult>,
  ) {
    super();
    this.setMaxListeners(0);
    this.startedAt = startedAt;
    this.done = run(this)
      .then(
        (result): PullOutcome => ({ ok: true, result }),
        (error: unknown): PullOutcome => ({ ok: false, error: asTemplatesError(error) }),
      )
      .then((outcome) => {
        this.state.outcome = outcome;
        this.emit('end', outcome);
        return outcome;
      });
  }

  /** Resolves on the next progress event or the end, whichever comes first (or after `ms`). */
  async changed(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.state.outcome) return;
    const timeout = AbortSignal.timeout(ms);
    const either = signal ? AbortSignal.any([signal, timeout]) : timeout;
    await Promise.race([once(this, 'progress', { signal: either }), once(this, 'end', { signal: either })]).catch(
      () => undefined,
    );
  }
}

export interface PullEvents {
  onStart?(pull: Pull): void;
  onBytes?(pull: Pull, delta: number): void;
  onEnd?(pull: Pull, outcome: PullOutcome, seconds: number): void;
}

export interface Pulls {
  /** The running pull of `key`, or a new one. A pull that failed less than `failureMemoryMs` ago is returned as it ended. */
  start(key: VersionKey): Pull;
  active(): Pull[];
  /** Waits for every running pull, at most `ms`; then aborts the rest (their files are cleaned as a killed fetch's). */
  drain(ms: number): Promise<void>;
}

export interface PullOptions {
  store: Store;
  context: Context;
  repositories: () => RepositorySet;
  events?: PullEvents;
  /** How long a failure is answered as it is, instead of starting another pull (default 10 s). */
  failureMemoryMs?: number;
}

export function createPulls(options: PullOptions): Pulls {
  const running = new Map<string, Pull>();
  const failed = new Map<string, Pull>();
  const stop = new AbortController();
  const now = options.context.now;
  const memory = options.failureMemoryMs ?? 10_000;
  return {
    start(key) {
      const name = entryName(key);
      const current = running.get(name);
      if (current) return current;
      const recent = failed.get(name);
      if (recent && now() - recent.startedAt < memory) return recent;
      // Failures older than the memory are forgotten here, so the map holds at most what failed within it.
      for (const [old, pull] of failed) if (now() - pull.startedAt >= memory) failed.delete(old);
      const pull = new Pull(name, key, now(), (self) =>
        fetchTemplate(name, {
          store: options.store,
          repositories: options.repositories(),
          context: options.context,
          signal: stop.signal,
          onProgress: (event) => {
            if (event.phase === 'verified') {
              self.state.compressedVerified = true;
              self.emit('progress');
              return;
            }
            if (event.phase !== 'download') return;
            const delta = event.bytes - self.state.bytes;
            self.state.location = event.location;
            self.state.bytes = event.bytes;
            if (event.total !== undefined) self.state.total = event.total;
            if (delta > 0) options.events?.onBytes?.(self, delta);
            self.emit('progress');
          },
        }),
      );
      running.set(name, pull);
      failed.delete(name);
      options.events?.onStart?.(pull);
      void pull.done.then((outcome) => {
        running.delete(name);
        if (!outcome.ok) failed.set(name, pull);
        options.events?.onEnd?.(pull, outcome, (now() - pull.startedAt) / 1000);
      });
      return pull;
    },
    active: () => [...running.values()],
    async drain(ms) {
      const all = Promise.all([...running.values()].map((pull) => pull.done));
      const timer = new Promise((resolve) => setTimeout(resolve, ms).unref());
      await Promise.race([all, timer]);
      if (running.size) {
        stop.abort(
          new TemplatesError('ABORTED', 'the server is shutting down', {
            hint: 'fetch again once it is back: the download resumes where it stopped',
          }),
        );
      }
      await all;
    },
  };
}

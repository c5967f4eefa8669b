// What the server is fetching and has fetched lately (pulls and jobs): live progress for the dashboard's event stream.
import { EventEmitter } from 'node:events';
import type { SourceSpec } from '../repository/model.js';

/** Where the bytes came from: the source's own server, one of its mirrors, an OCI registry, or a local directory. */
export type SourceKind = 'primary' | 'mirror' | 'registry' | 'local';

export interface Transfer {
  id: number;
  /** A neighbour's pull-through, or an on-demand job's fetch. */
  kind: 'pull' | 'job';
  ref: string;
  /** The job it belongs to (kind "job"). */
  job?: number;
  /** Milliseconds since the epoch. */
  startedAt: number;
  endedAt?: number;
  bytes: number;
  total?: number;
  /** The URL being read (credentials never included: progress events carry redacted locations). */
  location?: string;
  source?: SourceKind;
  /** downloaded, cached (someone else stored it first) or failed; absent while in flight. */
  result?: 'downloaded' | 'cached' | 'failed';
  /** The error code of a failure (docs/errors.md). */
  code?: string;
  message?: string;
}

interface TransferEnd {
  result: 'downloaded' | 'cached' | 'failed';
  code?: string;
  message?: string;
}

/** Which server of `source` a URL belongs to. */
export function sourceKind(source: SourceSpec | undefined, location: string | undefined): SourceKind | undefined {
  if (!source) return undefined;
  if (source.type === 'oci') return 'registry';
  if (source.type === 'file') return 'local';
  if (!location) return undefined;
  return source.mirrors?.some((mirror) => location.startsWith(mirror)) && !location.startsWith(source.baseurl)
    ? 'mirror'
    : 'primary';
}

export interface Activity {
  /** Emits `change` with the transfer after each start, progress and end. */
  readonly events: EventEmitter<{ change: [Transfer] }>;
  start(kind: Transfer['kind'], ref: string, job?: number): Transfer;
  /** Fields left undefined keep their value. */
  progress(
    transfer: Transfer,
    update: { [K in 'bytes' | 'total' | 'location' | 'source']?: Transfer[K] | undefined },
  ): void;
  end(transfer: Transfer, end: TransferEnd): void;
  inFlight(): Transfer[];
  /** The latest ended transfers, newest first. */
  recent(): Transfer[];
}

/** `keep` ended transfers are remembered (memory only: a restart starts an empty list). */
export function createActivity(now: () => number, keep = 50): Activity {
  const events = new EventEmitter<{ change: [Transfer] }>();
  events.setMaxListeners(0);
  const running = new Map<number, Transfer>();
  const ended: Transfer[] = [];
  let next = 0;
  const changed = (transfer: Transfer) => events.emit('change', { ...transfer });
  return {
    events,
    start(kind, ref, job) {
      const transfer: Transfer = {
        id: ++next,
        kind,
        ref,
        ...(job !== undefined ? { job } : {}),
        startedAt: now(),
        bytes: 0,
      };
      running.set(transfer.id, transfer);
      changed(transfer);
      return transfer;
    },
    progress(transfer, update) {
      Object.assign(transfer, Object.fromEntries(Object.entries(update).filter(([, value]) => value !== undefined)));
      changed(transfer);
    },
    end(transfer, end) {
      if (!running.delete(transfer.id)) return;
      Object.assign(transfer, { endedAt: now(), ...end });
      ended.unshift(transfer);
      ended.length = Math.min(ended.length, keep);
      changed(transfer);
    },
    inFlight: () => [...running.values()].map((transfer) => ({ ...transfer })),
    recent: () => ended.map((transfer) => ({ ...transfer })),
  };
}

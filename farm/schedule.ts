// The farm's timetable: when each version comes into demand and when each fault starts and ends (pure; the report prints it).

/** The versions in the order a farm comes to want them: each new one is a cold pull for the cache host. */
export const ARRIVALS = [
  'farm:alpine:v1',
  'farm:debian:v1',
  'farm:alpine:v2',
  'farm:fedora:v1',
  'farm:debian:v2',
  'farm:ubuntu:v1',
  'farm:fedora:v2',
  'farm:ubuntu:v2',
] as const;

/** When each arrives, as a share of the run; the last 15 % has everything in demand. */
const ARRIVE_AT = [0, 0.05, 0.14, 0.25, 0.36, 0.48, 0.6, 0.7];

type FaultKind =
  | 'kill-cache-host'
  | 'primary-500'
  | 'mirror-corrupt'
  | 'primary-reset'
  | 'primary-stall'
  | 'disk-full'
  | 'kill-neighbour';

export interface FaultEvent {
  kind: FaultKind;
  /** ms from the start. */
  at: number;
  /** ms from the start; a point event has none. */
  until?: number;
  /** What it hits (a version whose pull it should meet, a file). */
  target?: string;
}

/** The versions wanted `now` ms into a run of `duration` ms. */
export function demandAt(now: number, duration: number): string[] {
  return ARRIVALS.filter((_, i) => now >= ARRIVE_AT[i]! * duration);
}

/** The faults of a run of `duration` ms: each timed to meet a version's first pull. */
export function faultSchedule(duration: number): FaultEvent[] {
  const at = (share: number) => Math.round(share * duration);
  const window = (from: number, to: number) => ({ at: at(from), until: at(to) });
  return [
    // The first cold pull: every neighbour waits on it, and the cache host dies under it.
    { kind: 'kill-cache-host', at: at(0), target: 'farm:alpine:v1' },
    // alpine:v2's pull (a delta against v1) meets a primary answering 500: the mirror serves it.
    { kind: 'primary-500', ...window(0.12, 0.2), target: 'farm:alpine:v2' },
    // fedora:v1: the primary failed lately, so the mirror goes first, and it serves corrupt bytes.
    { kind: 'mirror-corrupt', ...window(0.2, 0.32), target: 'fedora/v1/disk.raw.zst' },
    // debian:v2: the primary resets every connection after 256 KiB.
    { kind: 'primary-reset', ...window(0.34, 0.42), target: 'farm:debian:v2' },
    { kind: 'kill-neighbour', at: at(0.3) },
    // ubuntu:v1: nothing moves on the upstream link for 15 % of the run.
    { kind: 'primary-stall', ...window(0.46, 0.54), target: 'farm:ubuntu:v1' },
    { kind: 'kill-neighbour', at: at(0.55) },
    // The second kill, under fedora:v2's pull.
    { kind: 'kill-cache-host', at: at(0.6), target: 'farm:fedora:v2' },
    // ubuntu:v2 arrives on a full disk.
    { kind: 'disk-full', ...window(0.67, 0.76), target: 'farm:ubuntu:v2' },
    { kind: 'kill-neighbour', at: at(0.8) },
  ];
}

/** One line per event, for the report. */
export function describeSchedule(events: FaultEvent[]): string[] {
  const s = (ms: number) => `${(ms / 1000).toFixed(0).padStart(4)} s`;
  return events.map(
    (e) =>
      `${s(e.at)}${e.until !== undefined ? ` – ${s(e.until).trim()}` : ''}  ${e.kind}${e.target ? ` (${e.target})` : ''}`,
  );
}

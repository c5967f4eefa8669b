// On-demand jobs (pure): states and their codes as reference 002 names them, which moves are allowed, and a job's API shape.

/** State codes, stable in the API and the database. */
export const JOB_STATES = { wait: 0, fetching: 1, done: 2, removed: 3, failed: 4 } as const;
export type JobStateName = keyof typeof JOB_STATES;
export type JobState = (typeof JOB_STATES)[JobStateName];

const NAMES = Object.fromEntries(Object.entries(JOB_STATES).map(([name, code]) => [code, name])) as Record<
  JobState,
  JobStateName
>;

export function stateName(state: JobState): JobStateName {
  return NAMES[state];
}

/** A state given by code (`2`) or name (`done`), or undefined when it is neither. */
export function parseState(text: string): JobState | undefined {
  if (/^\d$/.test(text) && Number(text) in NAMES) return Number(text) as JobState;
  return (JOB_STATES as Record<string, JobState | undefined>)[text];
}

/** Moves a job may make: waiting → fetching → done → removed, failed from any live state, and back to wait on renewal. */
const MOVES: Record<JobState, JobState[]> = {
  0: [1, 4],
  1: [2, 4, 0],
  2: [3, 4],
  3: [0],
  4: [0],
};

export function canMove(from: JobState, to: JobState): boolean {
  return MOVES[from].includes(to);
}

/** A job holds its templates in the store while it waits, fetches or is done. */
export function isLive(state: JobState): boolean {
  return state === JOB_STATES.wait || state === JOB_STATES.fetching || state === JOB_STATES.done;
}

export interface JobRef {
  /** As submitted. */
  ref: string;
  /** The pinned fully qualified reference `<repo>:<template>:<version>` and the digest it had at submission. */
  version: string;
  digest: string | null;
  state: JobState;
}

export interface Job {
  id: number;
  owner: string;
  label: string | null;
  results: string[];
  secondsToLive: number;
  state: JobState;
  stateReason: string | null;
  /** A failed job's error code (docs/errors.md), or null. */
  stateCode: string | null;
  refs: JobRef[];
  /** Milliseconds since the epoch, or null. */
  timeSubmitted: number;
  timeStarted: number | null;
  timeDone: number | null;
  timeToExpire: number | null;
  timeRemoved: number | null;
  removedBy: string | null;
  progress: { bytes: number; total: number | null };
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The job as the API shows it (reference 002's field names; times UTC ISO 8601 or null). */
/** `result`: once the job is done, its result repository (the first) and each one by upstream repository name. */
export function jobJson(
  job: Job,
  result: { repofile: string; repofiles: Record<string, string> } | null,
): Record<string, unknown> {
  return {
    id: job.id,
    owner: job.owner,
    refs: job.refs.map((ref) => ({
      ref: ref.ref,
      version: ref.version,
      digest: ref.digest,
      state: ref.state,
      state_name: stateName(ref.state),
    })),
    state: job.state,
    state_name: stateName(job.state),
    state_reason: job.stateReason,
    state_code: job.stateCode,
    label: job.label,
    results: job.results,
    seconds_to_live: job.secondsToLive,
    time_submitted: iso(job.timeSubmitted),
    time_started: iso(job.timeStarted),
    time_done: iso(job.timeDone),
    time_to_expire: iso(job.timeToExpire),
    time_removed: iso(job.timeRemoved),
    removed_by: job.removedBy,
    result_repofile: result?.repofile ?? null,
    result_repofiles: result?.repofiles ?? null,
    progress: job.progress,
  };
}

// The farm's job traffic: jobs created, renewed, removed and left to expire over the API, and a count of those the cache host lost.
import { setTimeout as sleep } from 'node:timers/promises';

export interface JobTraffic {
  /** Every job id the cache host acknowledged (201), from here or from neighbours. */
  acknowledged: Set<number>;
  counts: { created: number; renewed: number; removed: number; refused: number };
  run(stop: AbortSignal): Promise<void>;
  /**
   * Asks for every acknowledged job. Lost: one the server no longer knows (404), or, with `settled`,
   * one still waiting or fetching (a job nothing will ever run again).
   */
  lost(settled: boolean): Promise<number[]>;
  /** How many acknowledged jobs are in each state now. */
  states(): Promise<Record<string, number>>;
}

interface Job {
  id: number;
  state_name: string;
}

export function createJobTraffic(options: {
  server: string;
  demand(now: number): string[];
  now(): number;
  random: () => number;
}): JobTraffic {
  const acknowledged = new Set<number>();
  const counts = { created: 0, renewed: 0, removed: 0, refused: 0 };
  const api = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${options.server}/api/1/jobs${path}`, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  };
  const get = async (id: number): Promise<Job | undefined | 'unreachable'> => {
    try {
      const answer = await api('GET', `/${id}`);
      if (answer.status === 404) return undefined;
      if (answer.status !== 200) return 'unreachable';
      return answer.body as Job;
    } catch {
      return 'unreachable';
    }
  };
  const pick = <T>(items: T[]): T => items[Math.floor(options.random() * items.length)]!;

  const step = async () => {
    const roll = options.random();
    const ids = [...acknowledged];
    if (roll < 0.6 || !ids.length) {
      const wanted = options.demand(options.now());
      const refs = [...new Set([pick(wanted), pick(wanted)])];
      const answer = await api('POST', '', {
        refs,
        seconds_to_live: 10 + Math.floor(options.random() * 30),
        label: 'farm',
      });
      if (answer.status === 201) {
        acknowledged.add((answer.body as Job).id);
        counts.created += 1;
      } else counts.refused += 1;
    } else if (roll < 0.85) {
      const answer = await api('PATCH', `/${pick(ids)}`, { seconds_to_live: 20 });
      if (answer.status === 200) counts.renewed += 1;
    } else {
      const answer = await api('DELETE', `/${pick(ids)}`);
      if (answer.status === 202) counts.removed += 1;
    }
  };

  return {
    acknowledged,
    counts,
    async run(stop) {
      while (!stop.aborted) {
        // While the cache host is down (killed, restarting) requests fail: nothing was acknowledged then.
        await step().catch(() => {
          counts.refused += 1;
        });
        await sleep(1500 + options.random() * 2500);
      }
    },
    async lost(settled) {
      const lost: number[] = [];
      for (const id of acknowledged) {
        let job = await get(id);
        for (let i = 0; i < 20 && job === 'unreachable'; i++) {
          await sleep(500);
          job = await get(id);
        }
        if (job === undefined || job === 'unreachable') lost.push(id);
        else if (settled && (job.state_name === 'wait' || job.state_name === 'fetching')) lost.push(id);
      }
      return lost;
    },
    async states() {
      const states: Record<string, number> = {};
      for (const id of acknowledged) {
        const job = await get(id);
        const name = job === undefined ? 'not found' : job === 'unreachable' ? 'unreachable' : job.state_name;
        states[name] = (states[name] ?? 0) + 1;
      }
      return states;
    },
  };
}

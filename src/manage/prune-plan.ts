// The configured prune policy, and what it would take next from a list of entries (pure: the dashboard's "next to go").
import type { StoredSummary } from '../store/inventory.js';
import { choosePrune, type PruneOptions } from './prune.js';

export interface PrunePolicy {
  olderThanMs?: number;
  keep?: number;
  maxBytes?: number;
}

/** The policy from settings where 0 means "no such criterion" (config keys pruneOlderThanSeconds, pruneKeep, pruneMaxBytes). */
export function prunePolicy(settings: { olderThanSeconds: number; keep: number; maxBytes: number }): PrunePolicy {
  return {
    ...(settings.olderThanSeconds > 0 ? { olderThanMs: settings.olderThanSeconds * 1000 } : {}),
    ...(settings.keep > 0 ? { keep: settings.keep } : {}),
    ...(settings.maxBytes > 0 ? { maxBytes: settings.maxBytes } : {}),
  };
}

export interface PrunePlan {
  /** What a prune under the policy would remove now, and why; oldest use first. */
  next: Array<{ entry: StoredSummary; reason: string }>;
  /** Chosen but kept: live dependents. */
  kept: Array<{ entry: StoredSummary; reason: string }>;
  freed: number;
}

/** What `pruneStore` would do with these entries under `policy` (without `force`), without touching the store. */
export function planPrune(
  entries: StoredSummary[],
  policy: PrunePolicy,
  now: number,
  options: Pick<PruneOptions, 'repositories'> = {},
): PrunePlan {
  const chosen = choosePrune(entries, { ...policy, ...options }, now);
  const plan: PrunePlan = { next: [], kept: [], freed: 0 };
  for (const entry of [...entries].sort((a, b) => Date.parse(a.lastUsed) - Date.parse(b.lastUsed))) {
    const reason = chosen.get(entry.ref);
    if (!reason) continue;
    if (entry.dependents.length) plan.kept.push({ entry, reason: `used by ${entry.dependents.join(', ')}` });
    else {
      plan.next.push({ entry, reason });
      plan.freed += entry.diskSize;
    }
  }
  return plan;
}

// Which keys a repository must be signed with (pure): the config's trust rules, --trusted-key, requireSignatures, age and rollback.
import { isAbsolute, resolve } from 'node:path';
import type { PublicKey } from './minisign.js';

export interface TrustRule {
  /** A repository URL or path, a prefix of them (ends in `/`), or a repository name. */
  repo: string;
  key: PublicKey;
}

export interface TrustPolicy {
  /** The config's `trust`. */
  rules: TrustRule[];
  /** `--trusted-key`: trusted for every repository the command loads. */
  keys: PublicKey[];
  /** Refuse a repository no trusted key applies to. */
  requireSignatures: boolean;
  /** Refuse a signature older than this (milliseconds); undefined: any age. */
  maxSignatureAgeMs?: number;
  /** Accept a lower revision (or older signature) than this store accepted before. */
  allowRollback: boolean;
}

export const NO_TRUST: TrustPolicy = { rules: [], keys: [], requireSignatures: false, allowRollback: false };

/** True when a rule names a location (a URL or a path) rather than a repository name. */
const isLocation = (repo: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(repo) || repo.includes('/');

const normalise = (location: string) =>
  /^[a-z][a-z0-9+.-]*:\/\//i.test(location) || isAbsolute(location) ? location : resolve(location);

/**
 * The keys trusted for the repository at `location` (an URL or a path) named `name`: --trusted-key's, and those of
 * every rule naming the location exactly, a prefix of it, or the name. Empty: nothing is trusted for it.
 */
export function trustedKeys(policy: TrustPolicy, location: string, name: string | undefined): PublicKey[] {
  const where = normalise(location);
  const matching = policy.rules.filter((rule) =>
    isLocation(rule.repo)
      ? where === normalise(rule.repo) ||
        (rule.repo.endsWith('/') && where.startsWith(normalise(rule.repo).replace(/\/?$/, '/')))
      : rule.repo === name,
  );
  return [...policy.keys, ...matching.map((rule) => rule.key)];
}

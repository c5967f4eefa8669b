// templates/trust: minisign keys for signed repositories, and the lock file that pins exact versions and digests.
export { readPublicKey, readSecretKey, writeKeyPair } from '../trust/keys.js';
export type { SignatureInfo } from '../trust/check.js';
export type { TrustPolicy, TrustRule } from '../trust/policy.js';
export { lockTemplates, type LockOptions } from '../lockfile/lock.js';
export { fetchLocked, verifyLocked, type FetchLockedOptions, type LockedStatus } from '../lockfile/fetch-locked.js';
export { parseLockFile, formatLockFile, DEFAULT_LOCK_FILE, type LockFile, type Pin } from '../lockfile/file.js';

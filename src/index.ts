// The public API: named exports only (docs/api.md).
export { TemplatesError, ERROR_CODES, isTemplatesError, type ErrorCode, type ErrorFields } from './errors.js';
export { createContext, type Context, type ContextOptions } from './context.js';
export {
  openStore,
  defaultStoreRoot,
  readStoredEntry,
  type Store,
  type StoreOptions,
  type StoredEntry,
} from './store/store.js';
export type { EntryRecord } from './store/record.js';
export { entryName } from './store/layout.js';
export { loadRepository, MAX_REPOSITORY_BYTES } from './repository/load.js';
export { loadRepositories, splitRepoList, type FindOptions } from './repository/find.js';
export { RepositorySet } from './repository/set.js';
export { parseRepository } from './repository/parse.js';
export { resolveReference, latestVersion, type Resolved } from './repository/resolve.js';
export { parseReference, isValidName } from './repository/reference.js';
export { parseDigest, parseHashFile, formatDigest, type Digest, type HashAlgorithm } from './repository/digest.js';
export type { Repository, TemplateSpec, VersionSpec, SourceSpec, Entry } from './repository/model.js';
export { fetchTemplate, type FetchOptions, type FetchResult } from './fetch/fetch.js';
export {
  fetchTemplates,
  fetchTemplatesSettled,
  type FetchOutcome,
  type FetchTemplatesOptions,
} from './fetch/fetch-templates.js';
export {
  resolveTemplate,
  templatePath,
  type Resolution,
  type ResolveOptions,
  type PathOptions,
} from './fetch/describe.js';
export type { ProgressEvent, ProgressCallback } from './fetch/progress.js';
export { createHttpClient, type HttpClient, type HttpClientOptions } from './http/client.js';
export { indexDirectory, type IndexOptions, type IndexSummary } from './publish/index-directory.js';
export type { IndexProgressEvent, IndexProgressCallback, IndexedStatus } from './publish/progress.js';
export { listTemplates, type ListedVersion } from './manage/list.js';
export { listStored, type StoredSummary } from './store/inventory.js';
export { templateInfo, type TemplateInfo, type InfoOptions } from './manage/info.js';
export { verifyEntry, type VerifyResult, type VerifyOptions, type VerifyStatus } from './manage/verify.js';
export { removeEntry, type RemoveOptions } from './manage/remove.js';
export { pruneStore, type PruneOptions, type PruneReport } from './manage/prune.js';
export { planPrune, prunePolicy, type PrunePlan, type PrunePolicy } from './manage/prune-plan.js';
export { diskUsage, type DiskUsage } from './manage/du.js';
export { importTemplate, type ImportOptions } from './manage/import.js';
export { cloneTemplate, type CloneOptions, type CloneResult } from './manage/clone.js';
export { exportTemplates, type ExportOptions, type ExportSummary } from './manage/export.js';
export { storedKey } from './manage/refs.js';
export { readUsers, updateUsers, touchLastUse, type Users } from './store/users.js';
export { resolveSettings, SETTINGS, type Settings, type Setting, type Origin } from './config/settings.js';
export { startServer, type ServeOptions, type RunningServer } from './server/serve.js';
export { createJobClient, jobFailure } from './jobs/client.js';
export type { JobClient, JobClientOptions, JobJson, JobPage, NewJobRequest, WaitOptions } from './jobs/client.js';
export { scrapeStatus, type ScrapeOptions } from './status/scrape.js';
export type { StatusReport, ServerStatus, RepositoryStatus, DeepCheck, SyncState } from './status/model.js';
export { statusToPrometheus } from './status/prometheus.js';
export { configuredMirrors } from './config/file.js';
export type { MirrorRule } from './http/mirrors.js';
export { pushTemplate, type PushOptions, type PushResult } from './manage/push.js';
export { parseOciReference, storeKeyOf, type OciReference } from './oci/reference.js';
export { indexRegistry, type RegistryIndexOptions, type RegistryIndexSummary } from './publish/index-registry.js';
export { lockTemplates, type LockOptions } from './lockfile/lock.js';
export { fetchLocked, verifyLocked, type FetchLockedOptions, type LockedStatus } from './lockfile/fetch-locked.js';
export { parseLockFile, formatLockFile, DEFAULT_LOCK_FILE, type LockFile, type Pin } from './lockfile/file.js';
export { signRepository, type SignResult } from './publish/sign.js';
export { readPublicKey, readSecretKey, writeKeyPair } from './trust/keys.js';
export type { SignatureInfo } from './trust/check.js';
export type { TrustPolicy, TrustRule } from './trust/policy.js';

// The public API's main entry: fetching, the store, repositories, errors (docs/api.md); the rest in src/api/ subpaths.
export { TemplatesError, ERROR_CODES, isTemplatesError, type ErrorCode, type ErrorFields } from './errors.js';
export { createContext, type Context, type ContextOptions } from './context.js';
export { openStore, defaultStoreRoot, type Store, type StoreOptions } from './store/store.js';
export type { EntryRecord } from './store/record.js';
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
  type DeltaEstimate,
  type PathOptions,
} from './fetch/describe.js';
export type { ProgressEvent, ProgressCallback } from './fetch/progress.js';
export type { DeltaReport } from './fetch/delta-plan.js';
export { createHttpClient, type HttpClient, type HttpClientOptions } from './http/client.js';
export { listTemplates, type ListedVersion } from './manage/list.js';
export { listStored, type StoredSummary } from './store/inventory.js';
export { templateInfo, type TemplateInfo, type InfoOptions } from './manage/info.js';
export { verifyTemplate, type VerifyResult, type VerifyOptions, type VerifyStatus } from './manage/verify.js';
export { removeTemplate, type RemoveOptions } from './manage/remove.js';
export { useTemplate, type UseOptions } from './manage/use.js';
export { pruneStore, type PruneOptions, type PruneReport } from './manage/prune.js';
export { planPrune, prunePolicy, type PrunePlan, type PrunePolicy } from './manage/prune-plan.js';
export { diskUsage, type DiskUsage } from './manage/du.js';
export { importTemplate, type ImportOptions } from './manage/import.js';
export { cloneTemplate, type CloneOptions, type CloneResult } from './manage/clone.js';
export { exportTemplates, type ExportOptions, type ExportSummary } from './manage/export.js';
export { resolveSettings, SETTINGS, type Settings, type Setting, type Origin } from './config/settings.js';

// The public API: named exports only (docs/api.md).
export { TemplatesError, ERROR_CODES, isTemplatesError, type ErrorCode, type ErrorFields } from './errors.js';
export { createContext, type Context, type ContextOptions } from './context.js';
export { openStore, defaultStoreRoot, readStoredEntry, type Store, type StoreOptions, type StoredEntry } from './store/store.js';
export type { EntryRecord } from './store/record.js';
export { entryName } from './store/layout.js';
export { loadRepository, MAX_REPOSITORY_BYTES } from './spec/load.js';
export { loadRepositories, splitRepoList, type RepositorySet, type FindOptions } from './spec/find.js';
export { parseRepository } from './spec/parse.js';
export { resolveReference, latestVersion, type Resolved } from './spec/resolve.js';
export { parseReference, isValidName } from './spec/reference.js';
export { parseDigest, parseHashFile, formatDigest, type Digest, type HashAlgorithm } from './spec/digest.js';
export type { Repository, TemplateSpec, VersionSpec, SourceSpec, Entry } from './spec/model.js';
export { fetchTemplate, type FetchOptions, type FetchResult } from './fetch/fetch.js';
export { resolveTemplate, templatePath, type Resolution, type ResolveOptions, type PathOptions } from './fetch/describe.js';
export type { ProgressEvent, ProgressCallback } from './fetch/progress.js';
export { createHttpClient, type HttpClient, type HttpClientOptions } from './providers/http-client.js';
export { indexDirectory, type IndexOptions, type IndexSummary } from './publish/index-directory.js';
export type { IndexProgressEvent, IndexProgressCallback, IndexedStatus } from './publish/progress.js';

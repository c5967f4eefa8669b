// templates/publish: repositories made from a directory of images or an OCI registry (templates index), and signed.
export { indexDirectory, type IndexOptions, type IndexSummary } from '../publish/index-directory.js';
export type { IndexProgressEvent, IndexProgressCallback, IndexedStatus } from '../publish/progress.js';
export { indexRegistry, type RegistryIndexOptions, type RegistryIndexSummary } from '../publish/index-registry.js';
export { signRepository, type SignResult } from '../publish/sign.js';

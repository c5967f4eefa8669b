// templates/status: each repository at its primary and its mirrors (templates status), and as Prometheus text.
export { scrapeStatus, type ScrapeOptions } from '../status/scrape.js';
export type { StatusReport, ServerStatus, RepositoryStatus, DeepCheck, SyncState } from '../status/model.js';
export { statusToPrometheus } from '../status/prometheus.js';
export { configuredMirrors } from '../config/file.js';
export type { MirrorRule } from '../http/mirrors.js';

// What the loader needs of a cache of repository JSON (the store provides one): read and replace a copy by URL.

export interface CachedRepository {
  /** The URL it came from, credentials removed. */
  url: string;
  /** ISO 8601 time of the download. */
  fetchedAt: string;
  /** The JSON exactly as served. */
  body: string;
  /** Its `.minisig` from the same server, when it was signed and a key was trusted for it. */
  signature?: string;
  /** A cache host's JSON: the signed upstream copy it passed on (and its `.minisig`), which is what was checked. */
  upstream?: { url: string; text: string; signature?: string };
}

export interface RepositoryCache {
  read(url: string): Promise<CachedRepository | undefined>;
  write(url: string, entry: CachedRepository): Promise<void>;
}

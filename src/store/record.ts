// The per-entry record this tool writes beside lago's sidecars: what was fetched, from where, verified how.

export interface KeptFile {
  digest: string;
  size: number;
}

/** The compressed file an entry keeps, and which it is. */
export function keptFile(record: EntryRecord | undefined): (KeptFile & { compression: 'xz' | 'zst' }) | undefined {
  if (record?.kept?.zst) return { ...record.kept.zst, compression: 'zst' };
  if (record?.kept?.xz) return { ...record.kept.xz, compression: 'xz' };
  return undefined;
}

export interface EntryRecord {
  /** Bumped when the record's shape changes. */
  schema: 1;
  ref: string;
  /** Where the image bytes came from (no credentials). */
  source: string;
  /** The base URL that delivered them (an http source: its baseurl or one of its mirrors); absent before mirrors existed. */
  server?: string;
  /** True when `server` is a mirror, not the source's own baseurl. */
  mirror?: boolean;
  /** Format of the image as the source served it, once decompressed (raw, qcow2). */
  sourceFormat: string;
  /** True when the source served xz. */
  compressed: boolean;
  /** The digest that was checked, written as `algo:hex`, and what it covered: the image, the `.xz` or the `.zst`. */
  verified: { digest: string; of: 'image' | 'compressed' | 'zst' };
  /**
   * Digest of the stored raw file itself, what `templates verify` checks: the verified image digest for a raw
   * source, the repository's image digest on the compressed fast path, else (qcow2) hashed after conversion.
   * Absent in records written before it existed (verify then uses `verified` when it covered the raw image).
   */
  stored?: {
    digest: string;
    /** false: the repository's image digest, recorded on the compressed fast path without being checked against the image. */
    checked?: false;
  };
  /** The source's `.xz` or `.zst`, kept beside the image as `<entry>.xz` / `<entry>.zst` (keepCompressed): its SHA-256 and size. One of the two. */
  kept?: { xz?: KeptFile; zst?: KeptFile };
  /** Apparent size in bytes of the stored raw image. */
  size: number;
  fetchedAt: string;
  tool: string;
}

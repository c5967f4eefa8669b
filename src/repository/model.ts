// The parsed repository model: lago's JSON with every broken part kept as an error beside the good ones.
import type { SignatureInfo } from '../trust/check.js';
import type { TemplatesError } from '../errors.js';
import type { Digest } from './digest.js';

/** A part of the repository that either parsed or failed; failures surface only when asked for. */
export type Entry<T> = { ok: true; value: T } | { ok: false; error: TemplatesError };

export type SourceSpec =
  /** `mirrors`: other base URLs serving the same files (the repository's top-level `mirrors`), in the order written. */
  | { name: string; type: 'http'; baseurl: string; mirrors?: string[] }
  | { name: string; type: 'file'; root: string }
  /** An OCI registry repository of our artifacts; handles are tags or digests (docs/oci.md; lago cannot read it). */
  | { name: string; type: 'oci'; registry: string; repository: string };

export interface VersionSpec {
  name: string;
  source: SourceSpec;
  handle: string;
  /** Seconds since the epoch (integer or float, as lago wrote it). */
  timestamp: number;
  /** Digest of the uncompressed image, when the repository gives it. */
  hash?: Digest;
  /** Digest of the `.xz` file, when the repository gives it. */
  compressedHash?: Digest;
  /** The `.zst` file (`zst_hash`, `zst_size`; docs/repository-format.md): listed only when it exists, so a fetch never probes for it. */
  zst?: { digest: Digest; size?: number };
  /**
   * The image's chunk index (`caibx_hash`, `caibx_size`; docs/delta.md): `h.caibx` in casync's format, its chunks in
   * `default.castr/` at the source's root. Listed only when it exists.
   */
  caibx?: { digest: Digest; size?: number };
  /** Size in bytes of the uncompressed image. */
  size?: number;
  format?: string;
}

export interface TemplateSpec {
  name: string;
  versions: Map<string, Entry<VersionSpec>>;
}

export interface Repository {
  name: string;
  /** Where it was loaded from: a file path or a URL (credentials removed). */
  location: string;
  templates: Map<string, Entry<TemplateSpec>>;
  /** One line per broken source, template or version: what `list`/validation warns about. */
  problems: string[];
  /** `revision` and `published` (seconds since the epoch) as `templates index` writes them, when present. */
  revision?: number;
  published?: number;
  /** Set by the loader: verified by a trusted key, or unsigned (no key is trusted for it, so nothing was checked). */
  signature?: SignatureInfo;
  /** A `templates serve` JSON: where the upstream JSON it passes on is, relative to it (docs/trust.md). */
  upstream?: string;
  /** Set by the loader: the JSON exactly as loaded (serve passes it through to neighbours with its `.minisig`). */
  text?: string;
}

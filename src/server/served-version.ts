// What the server offers neighbours for one version (pure): which files, and the digests, size and format that describe them.
import { parseDigest, type Digest } from '../repository/digest.js';
import type { VersionSpec } from '../repository/model.js';
import type { VersionKey } from '../repository/reference.js';
import type { StoredSummary } from '../store/inventory.js';
import { keptFile } from '../store/record.js';

/** Where one of the version's files comes from. */
export type FileSource =
  | { kind: 'stored'; path: string }
  | { kind: 'text'; text: string }
  /** Not stored yet: a GET starts (or joins) a pull from upstream. */
  | { kind: 'pull' }
  /** Not stored yet: read the small sidecar from upstream as it is. */
  | { kind: 'upstream' }
  | { kind: 'absent' };

export interface ServedVersion {
  key: VersionKey;
  timestamp: number;
  /** `algo:hex` of what `image` (or `image.xz` decoded) is, when known. */
  hash?: string;
  /** `algo:hex` of `image.xz`, when known. */
  compressedHash?: string;
  /** `algo:hex` and size of `image.zst`, when one is served. */
  zst?: { hash: string; size?: number };
  size?: number;
  format?: string;
  /** `algo:hex` and size of `image.caibx`, casync's index of the raw image, when upstream lists one (docs/delta.md). */
  caibx?: { hash: string; size?: number };
  files: {
    image: FileSource;
    'image.xz': FileSource;
    'image.zst': FileSource;
    'image.hash': FileSource;
    'image.metadata': FileSource;
  };
  stored?: StoredSummary;
}

const text = (digest: Digest | undefined) => (digest ? `${digest.algorithm}:${digest.hex}` : undefined);

/**
 * A stored entry is described as it is stored: with its kept `.xz` or `.zst`, the source's own digests and format (a qcow2
 * source is then served only compressed, as the source was); without, as the raw file and its recorded digest. An
 * entry inherited from lago records no digest of its raw file, so none is offered (`templates verify --adopt` adds one).
 * A version not stored is described as upstream describes it, and its files come from a pull.
 */
export function servedVersion(
  key: VersionKey,
  upstream: VersionSpec | undefined,
  stored: StoredSummary | undefined,
  compressedPath: (compression: 'xz' | 'zst') => string,
): ServedVersion | undefined {
  const timestamp = upstream?.timestamp ?? (stored ? Math.floor(Date.parse(stored.fetchedAt) / 1000) : undefined);
  if (timestamp === undefined) return undefined;
  const record = stored?.entry.record;
  const metadata: FileSource = stored
    ? { kind: 'text', text: JSON.stringify(stored.entry.metadata ?? {}) }
    : { kind: 'upstream' };
  const caibx = upstream?.caibx && {
    hash: text(upstream.caibx.digest)!,
    ...(upstream.caibx.size !== undefined ? { size: upstream.caibx.size } : {}),
  };
  const base = { key, timestamp, ...(stored ? { stored } : {}), ...(caibx ? { caibx } : {}) };
  const kept = keptFile(record);
  if (stored && kept) {
    const hash = text(upstream?.hash) ?? text(stored.entry.hash ? parseDigest(stored.entry.hash) : undefined);
    const raw = record!.sourceFormat === 'raw';
    const size = raw ? stored.entry.size : upstream?.size;
    return {
      ...base,
      ...(hash ? { hash } : {}),
      ...(kept.compression === 'xz'
        ? { compressedHash: kept.digest }
        : { zst: { hash: kept.digest, size: kept.size } }),
      ...(size !== undefined ? { size } : {}),
      format: record!.sourceFormat,
      files: {
        image: raw ? { kind: 'stored', path: stored.path } : { kind: 'absent' },
        'image.xz': kept.compression === 'xz' ? { kind: 'stored', path: compressedPath('xz') } : { kind: 'absent' },
        'image.zst': kept.compression === 'zst' ? { kind: 'stored', path: compressedPath('zst') } : { kind: 'absent' },
        'image.hash': hash ? { kind: 'text', text: hash } : { kind: 'absent' },
        'image.metadata': metadata,
      },
    };
  }
  if (stored) {
    const hash =
      record?.stored?.digest ??
      (record?.sourceFormat === 'raw' && record.verified.of === 'image' ? record.verified.digest : undefined);
    return {
      ...base,
      ...(hash ? { hash } : {}),
      size: stored.entry.size,
      format: 'raw',
      files: {
        image: { kind: 'stored', path: stored.path },
        'image.xz': { kind: 'absent' },
        'image.zst': { kind: 'absent' },
        'image.hash': hash ? { kind: 'text', text: hash } : { kind: 'absent' },
        'image.metadata': metadata,
      },
    };
  }
  if (!upstream) return undefined;
  const hash = text(upstream.hash);
  const compressedHash = text(upstream.compressedHash);
  return {
    ...base,
    ...(hash ? { hash } : {}),
    ...(compressedHash ? { compressedHash } : {}),
    ...(upstream.zst
      ? {
          zst: {
            hash: text(upstream.zst.digest)!,
            ...(upstream.zst.size !== undefined ? { size: upstream.zst.size } : {}),
          },
        }
      : {}),
    ...(upstream.size !== undefined ? { size: upstream.size } : {}),
    ...(upstream.format ? { format: upstream.format } : {}),
    files: {
      image: { kind: 'pull' },
      'image.xz': { kind: 'pull' },
      'image.zst': upstream.zst ? { kind: 'pull' } : { kind: 'absent' },
      'image.hash': hash ? { kind: 'text', text: hash } : { kind: 'upstream' },
      'image.metadata': metadata,
    },
  };
}

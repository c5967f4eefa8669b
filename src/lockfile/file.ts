// The lock file (pure): pins of exact versions and digests, read and written sorted and stable, so that no change means no churn.
import { TemplatesError } from '../errors.js';

export const LOCKFILE_VERSION = 1;
export const DEFAULT_LOCK_FILE = 'templates.lock.json';

/** One pinned template: what `templates fetch --locked` fetches, and what it must match. */
export interface Pin {
  /** The full reference `<repo>:<template>:<version>`. */
  ref: string;
  repository: string;
  template: string;
  version: string;
  /** Where the image comes from: the first URL a fetch tries on the source's own server. */
  source: string;
  /** The uncompressed image's digest (`algo:hex`), as the repository JSON or its `.hash` file gave it. */
  hash: string | null;
  compressed_hash: string | null;
  /** The `.zst`'s digest, when the repository listed one (absent in lock files written before zstd). */
  zst_hash?: string | null;
  size: number | null;
  format: string | null;
  /** The repository's `revision` when the pin was made (information: a later revision may keep the same digests). */
  revision: number | null;
}

export interface LockFile {
  lockfileVersion: 1;
  /** By the reference as asked (`demo:tiny` pins the newest when locked; `--update` moves it). */
  templates: Record<string, Pin>;
}

const invalid = (file: string, why: string) =>
  new TemplatesError('LOCK_MISMATCH', `${file}: not a templates lock file: ${why}`, {
    file,
    hint: 'write it with templates lock REF…',
  });

const nullable = <T>(value: unknown, check: (v: unknown) => v is T): value is T | null =>
  value === null || check(value);
const isString = (v: unknown): v is string => typeof v === 'string';
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

export function parseLockFile(text: string, file: string): LockFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw invalid(file, `invalid JSON (${(error as Error).message})`);
  }
  const lock = data as Partial<LockFile> | null;
  if (
    typeof lock !== 'object' ||
    lock === null ||
    lock.lockfileVersion !== LOCKFILE_VERSION ||
    typeof lock.templates !== 'object' ||
    lock.templates === null
  ) {
    throw invalid(file, `expected {"lockfileVersion": ${LOCKFILE_VERSION}, "templates": {…}}`);
  }
  for (const [asked, pin] of Object.entries(lock.templates)) {
    const p = pin as Partial<Pin> | null;
    const ok =
      typeof p === 'object' &&
      p !== null &&
      [p.ref, p.repository, p.template, p.version, p.source].every(isString) &&
      p.ref === `${p.repository}:${p.template}:${p.version}` &&
      nullable(p.hash, isString) &&
      nullable(p.compressed_hash, isString) &&
      (p.zst_hash === undefined || nullable(p.zst_hash, isString)) &&
      nullable(p.size, isNumber) &&
      nullable(p.format, isString) &&
      nullable(p.revision, isNumber) &&
      (p.hash || p.compressed_hash);
    if (!ok) throw invalid(file, `templates[${JSON.stringify(asked)}] is not a pin with a ref and a digest`);
  }
  return lock as LockFile;
}

/** Keys sorted, fields in one order, two-space indent, a final newline: the same pins give the same bytes. */
export function formatLockFile(lock: LockFile): string {
  const templates: Record<string, Pin> = {};
  for (const asked of Object.keys(lock.templates).sort()) {
    const p = lock.templates[asked]!;
    templates[asked] = {
      ref: p.ref,
      repository: p.repository,
      template: p.template,
      version: p.version,
      source: p.source,
      hash: p.hash,
      compressed_hash: p.compressed_hash,
      ...(p.zst_hash ? { zst_hash: p.zst_hash } : {}),
      size: p.size,
      format: p.format,
      revision: p.revision,
    };
  }
  return `${JSON.stringify({ lockfileVersion: LOCKFILE_VERSION, templates }, null, 2)}\n`;
}

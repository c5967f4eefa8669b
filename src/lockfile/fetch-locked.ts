// fetchLocked and verifyLocked: exactly the pinned versions, checked against the repository and the store; a difference is LOCK_MISMATCH.
import { createContext, type Context } from '../context.js';
import { TemplatesError, isTemplatesError } from '../errors.js';
import { readHash } from '../fetch/source.js';
import { fetchTemplate, type FetchResult } from '../fetch/fetch.js';
import type { ProgressCallback } from '../fetch/progress.js';
import { cachedResult } from '../fetch/result.js';
import { touchLastUse } from '../store/users.js';
import { verifyEntry, type VerifyResult } from '../manage/verify.js';
import { providerFor } from '../providers/index.js';
import { parseDigest, type Digest } from '../repository/digest.js';
import type { Repository, VersionSpec } from '../repository/model.js';
import { resolveReference } from '../repository/resolve.js';
import { RepositorySet } from '../repository/set.js';
import { readSettledEntry, readStoredEntry, type Store, type StoredEntry } from '../store/store.js';
import type { LockFile, Pin } from './file.js';

export interface FetchLockedOptions {
  store: Store;
  repositories: RepositorySet | Repository[];
  context?: Context;
  signal?: AbortSignal;
  offline?: boolean;
  onProgress?: ProgressCallback;
  /** Only these pins (by the reference as asked, or the full ref); default every pin. */
  only?: string[];
}

const same = (a: string | null, b: Digest | undefined) => {
  const pinned = a === null ? undefined : parseDigest(a);
  return !pinned || !b || pinned.algorithm !== b.algorithm || pinned.hex === b.hex;
};
const show = (d: Digest) => `${d.algorithm}:${d.hex}`;

function mismatch(pin: Pin, what: string, expected: string, actual: string, hint: string): TemplatesError {
  return new TemplatesError('LOCK_MISMATCH', `${pin.ref}: ${what}: locked ${expected}, now ${actual}`, {
    ref: pin.ref,
    expected,
    actual,
    hint,
  });
}

/** The pins to act on, in the lock's (sorted) order. */
function selected(lock: LockFile, only: string[] | undefined): Array<[string, Pin]> {
  const pins = Object.entries(lock.templates).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (!only?.length) return pins;
  const unknown = only.filter((ref) => !pins.some(([asked, pin]) => asked === ref || pin.ref === ref));
  if (unknown.length)
    throw new TemplatesError('LOCK_MISMATCH', `${unknown.join(', ')}: not in the lock file`, {
      hint: 'templates lock REF adds a pin',
    });
  return pins.filter(([asked, pin]) => only.includes(asked) || only.includes(pin.ref));
}

/** The first check whose pinned digest and current one (both known, same algorithm) differ, as LOCK_MISMATCH. */
function firstMismatch(
  pin: Pin,
  checks: Array<[what: string, pinned: string | null, now: Digest | undefined]>,
  hint: string,
): TemplatesError | undefined {
  const failed = checks.find(([, pinned, now]) => !same(pinned, now));
  return failed && mismatch(pin, failed[0], failed[1]!, show(failed[2]!), hint);
}

/** The pinned digest of what a stored entry's download verified: its image, its `.xz` or its `.zst`. */
function verifiedPin(pin: Pin, of: 'image' | 'compressed' | 'zst' | undefined): string | null {
  return of === 'compressed' ? pin.compressed_hash : of === 'zst' ? (pin.zst_hash ?? null) : pin.hash;
}

/** Whether a stored entry is the pinned image, by every digest both sides know. */
function storedMismatch(pin: Pin, entry: StoredEntry): TemplatesError | undefined {
  const record = entry.record;
  return firstMismatch(
    pin,
    [
      [
        'the stored image',
        pin.hash,
        record
          ? parseDigest(record.stored?.digest ?? '')
          : entry.hash === undefined
            ? undefined
            : parseDigest(entry.hash),
      ],
      [
        "the stored image's verified download",
        verifiedPin(pin, record?.verified.of),
        record ? parseDigest(record.verified.digest) : undefined,
      ],
    ],
    `the store holds another ${pin.ref}: templates rm ${pin.ref}, then fetch --locked again`,
  );
}

/** The repository's version with the pinned digests in force: the fetch verifies against the lock, not a `.hash` read now. */
function pinnedSet(repositories: RepositorySet, pin: Pin, version: VersionSpec): RepositorySet {
  const repository = repositories.get(pin.repository)!;
  const template = repository.templates.get(pin.template);
  if (!template?.ok) return repositories;
  const versions = new Map(template.value.versions);
  const hash = pin.hash === null ? undefined : parseDigest(pin.hash);
  const compressedHash = pin.compressed_hash === null ? undefined : parseDigest(pin.compressed_hash);
  // A .zst is used only when pinned: its digest is then the lock's; unpinned, the fetch takes the pinned .xz instead.
  const zstDigest = pin.zst_hash ? parseDigest(pin.zst_hash) : undefined;
  const { zst: _unpinned, ...rest } = version;
  const zst = zstDigest
    ? { zst: { digest: zstDigest, ...(version.zst?.size !== undefined ? { size: version.zst.size } : {}) } }
    : {};
  versions.set(pin.version, {
    ok: true,
    value: { ...rest, ...(hash ? { hash } : {}), ...(compressedHash ? { compressedHash } : {}), ...zst },
  });
  const templates = new Map(repository.templates);
  templates.set(pin.template, { ok: true, value: { ...template.value, versions } });
  return new RepositorySet([
    { ...repository, templates },
    ...repositories.list().filter((r) => r.name !== pin.repository),
  ]);
}

/** Fetches exactly what the lock pins (no version resolution); LOCK_MISMATCH when the repository or the store disagrees. */
export async function fetchLocked(lock: LockFile, options: FetchLockedOptions): Promise<FetchResult[]> {
  const ctx = options.context ?? createContext();
  const repositories = RepositorySet.from(options.repositories, 'fetchLocked');
  const results: FetchResult[] = [];
  for (const [, pin] of selected(lock, options.only)) {
    const key = { repository: pin.repository, template: pin.template, version: pin.version };
    const stored = await readSettledEntry(options.store, key);
    if (stored) {
      const wrong = storedMismatch(pin, stored);
      if (wrong) throw wrong;
    }
    let resolved: ReturnType<typeof resolveReference>;
    try {
      resolved = resolveReference(pin.ref, repositories);
    } catch (error) {
      const gone =
        isTemplatesError(error) && ['REPO_NOT_FOUND', 'TEMPLATE_NOT_FOUND', 'VERSION_NOT_FOUND'].includes(error.code);
      // Offline from the store: a stored pinned entry is enough, whatever the repositories say.
      if (stored && (options.offline || !gone)) {
        await touchLastUse(options.store, key, ctx.now());
        results.push(cachedResult(pin.ref, stored));
        continue;
      }
      if (gone)
        throw mismatch(
          pin,
          'the pinned version is gone from the repository',
          pin.ref,
          'absent',
          'templates lock --update picks a version that exists; or restore it upstream',
        );
      throw error;
    }
    const { version } = resolved;
    // The .hash file counts where the JSON gives no image digest (read only when the image would be downloaded).
    const sidecar =
      !stored && !options.offline && !version.hash && pin.hash && version.source.type !== 'oci'
        ? await readHash(providerFor(version.source, ctx.http), version.handle, options.signal).catch(() => undefined)
        : undefined;
    const republished = firstMismatch(
      pin,
      [
        ['the repository lists another compressed digest', pin.compressed_hash, version.compressedHash],
        ['the repository lists another .zst digest', pin.zst_hash ?? null, version.zst?.digest],
        ['the repository lists another image digest', pin.hash, version.hash],
        ['the .hash file gives another image digest', pin.hash, sidecar],
      ],
      'the version was republished: review it, then templates lock --update',
    );
    if (republished) throw republished;
    results.push(
      await fetchTemplate(pin.ref, {
        store: options.store,
        repositories: pinnedSet(repositories, pin, version),
        context: ctx,
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.offline ? { offline: true } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      }),
    );
  }
  return results;
}

export interface LockedStatus {
  asked: string;
  ref: string;
  /** ok: stored and re-hashed as recorded and pinned; missing: not stored; mismatch: stored, another image; corrupt: its bytes changed. */
  status: 'ok' | 'missing' | 'mismatch' | 'corrupt';
  verify?: VerifyResult;
  message?: string;
}

/** Checks the store against the lock: each pin stored, the same image (by digest), and intact (re-hashed). */
export async function verifyLocked(
  lock: LockFile,
  options: { store: Store; signal?: AbortSignal; only?: string[] },
): Promise<LockedStatus[]> {
  const out: LockedStatus[] = [];
  for (const [asked, pin] of selected(lock, options.only)) {
    const key = { repository: pin.repository, template: pin.template, version: pin.version };
    const entry = await readStoredEntry(options.store, key);
    if (!entry) {
      out.push({ asked, ref: pin.ref, status: 'missing', message: `${pin.ref} is not stored` });
      continue;
    }
    const wrong = storedMismatch(pin, entry);
    if (wrong) {
      out.push({ asked, ref: pin.ref, status: 'mismatch', message: wrong.message });
      continue;
    }
    const verified = await verifyEntry(options.store, key, { ...(options.signal ? { signal: options.signal } : {}) });
    const corrupt = verified?.status === 'corrupt' || verified?.status === 'unconfirmed';
    out.push({ asked, ref: pin.ref, status: corrupt ? 'corrupt' : 'ok', ...(verified ? { verify: verified } : {}) });
  }
  return out;
}

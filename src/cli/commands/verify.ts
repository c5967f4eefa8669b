// `templates verify [REF…]`: re-hash stored images against their recorded digests; exit 11 on any corruption.
import { ERROR_CODES } from '../../errors.js';
import { storedKey } from '../../manage/refs.js';
import { verifyEntry, type VerifyResult } from '../../manage/verify.js';
import { storedKeys } from '../../store/inventory.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { DEFAULT_LOCK_FILE } from '../../lockfile/file.js';
import { readLockFile } from '../lock-file.js';
import { COMMON_HELP, COMMON_OPTIONS, optionalValue, parseCommand, type CommonValues } from '../options.js';
import { setupStore } from '../setup.js';

export const VERIFY_HELP = `Usage: templates verify [options] [REF...]

Re-hashes each stored image (all of them without REF) against the digest recorded when it was stored,
and reports it as ok, corrupt, missing-sidecar (.hash or .metadata gone) or unverifiable (an entry
inherited from lago, with no record). Exits 11 when any is corrupt or misses a sidecar, else 0.
REF is repo:name:version.

  --remove-corrupt  remove corrupt entries (fetch them again afterwards)
  --adopt           hash unverifiable entries now and record the digest (a lago .hash that disagrees: corrupt)
  --locked [FILE]   check the store against the lock file (default ./templates.lock.json): each pin
                    stored, the same image by digest, and intact; exit 14 when one is missing or another
                    image, 11 when one is corrupt
${COMMON_HELP}`;

export async function verifyCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<
    CommonValues & { 'remove-corrupt'?: boolean; adopt?: boolean; locked?: string }
  >(
    optionalValue(args, '--locked', DEFAULT_LOCK_FILE),
    {
      ...COMMON_OPTIONS,
      'remove-corrupt': { type: 'boolean' },
      adopt: { type: 'boolean' },
      locked: { type: 'string' },
    },
    'verify',
  );
  if (values.help) return printed(io, `${VERIFY_HELP}\n`);
  const { store, context } = await setupStore(values, io);
  if (values.locked !== undefined) {
    const { verifyLocked } = await import('../../lockfile/fetch-locked.js');
    const statuses = await verifyLocked(await readLockFile(values.locked), {
      store,
      signal: io.signal,
      only: positionals,
    });
    for (const s of statuses)
      io.stdout.write(
        values.json
          ? `${JSON.stringify(s)}\n`
          : `${s.asked}: ${s.ref} ${s.status}${s.message && s.status !== 'missing' ? ` (${s.message})` : ''}\n`,
      );
    if (statuses.some((s) => s.status === 'missing' || s.status === 'mismatch')) return ERROR_CODES.LOCK_MISMATCH;
    return statuses.some((s) => s.status === 'corrupt') ? ERROR_CODES.CORRUPT : 0;
  }
  const keys = positionals.length ? positionals.map((ref) => storedKey(ref)) : await storedKeys(store);
  let exitCode = 0;
  for (const key of keys) {
    const result: VerifyResult = (await verifyEntry(store, key, {
      removeCorrupt: Boolean(values['remove-corrupt']),
      adopt: Boolean(values.adopt),
      signal: io.signal,
      now: context.now,
      qemuImg: context.qemuImg,
    })) ?? {
      ref: `${key.repository}:${key.template}:${key.version}`,
      status: 'missing-sidecar',
      missing: ['the image'],
      hint: 'not in the store',
    };
    if (['corrupt', 'unconfirmed', 'removed', 'missing-sidecar'].includes(result.status))
      exitCode = ERROR_CODES.CORRUPT;
    if (values.json) io.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      const detail =
        result.status === 'corrupt' || result.status === 'unconfirmed' || result.status === 'removed'
          ? ` (expected ${result.expected}, got ${result.actual})`
          : result.missing
            ? ` (missing ${result.missing.join(', ')})`
            : '';
      io.stdout.write(
        `${result.ref}: ${result.status}${detail}${result.hint && result.status !== 'ok' ? `; ${result.hint}` : ''}\n`,
      );
    }
  }
  return exitCode;
}

// The store's memory of signed repositories: per name, the highest revision and signing time accepted (rollback refusal).
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { storeIoError } from '../errors.js';
import type { AcceptedRevision, TrustState } from '../trust/check.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { trustStatePath } from './layout.js';

const number = (value: unknown) =>
  Number.isSafeInteger(value) && (value as number) >= 0 ? (value as number) : undefined;

export function createTrustState(root: string): TrustState {
  return {
    async read(name) {
      let data: Record<string, unknown>;
      try {
        data = JSON.parse(await readFile(trustStatePath(root, name), 'utf8')) as Record<string, unknown>;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        // A damaged file must not open the door to a rollback: refuse until it is fixed or removed.
        throw storeIoError(error, trustStatePath(root, name), 'cannot read');
      }
      const revision = number(data?.revision);
      const signedAt = number(data?.signedAt);
      return { ...(revision !== undefined ? { revision } : {}), ...(signedAt !== undefined ? { signedAt } : {}) };
    },
    async accept(name, accepted: AcceptedRevision) {
      const path = trustStatePath(root, name);
      try {
        await mkdir(dirname(path), { recursive: true });
        await writeFileAtomic(path, `${JSON.stringify(accepted)}\n`);
      } catch (error) {
        throw storeIoError(error, path, 'cannot write');
      }
    },
  };
}

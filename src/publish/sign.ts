// Signs a repository JSON: writes REPO.json.minisig (minisign's prehashed Ed25519) whose trusted comment names the repository and revision.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { TemplatesError, outputIoError } from '../errors.js';
import { formatComment } from '../trust/comment.js';
import { keyId, signMessage, type SecretKey } from '../trust/minisign.js';
import { writeFileAtomic } from '../util/atomic-write.js';

export interface SignResult {
  /** The `.minisig` written. */
  signature: string;
  keyId: string;
  repository: string;
  revision?: number;
  /** Seconds since the epoch. */
  timestamp: number;
}

/** Signs the file as it is on disk (the bytes a server sends); `now` is the signing time (default Date.now). */
export async function signRepository(
  path: string,
  secret: SecretKey,
  options: { now?: () => number } = {},
): Promise<SignResult> {
  const bytes = await readFile(path).catch((error: unknown) => {
    throw new TemplatesError(
      'INPUT_NOT_FOUND',
      `${path}: cannot read the repository: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      { file: path },
      { cause: error },
    );
  });
  let data: { name?: unknown; revision?: unknown };
  try {
    data = JSON.parse(bytes.toString('utf8')) as typeof data;
  } catch (error) {
    throw new TemplatesError(
      'REPO_INVALID',
      `${path}: invalid JSON: ${(error as Error).message}`,
      { file: path, hint: 'sign the repository file itself' },
      { cause: error },
    );
  }
  if (typeof data !== 'object' || data === null || typeof data.name !== 'string' || !data.name) {
    throw new TemplatesError('REPO_INVALID', `${path}: not a repository (no "name")`, {
      file: path,
      hint: 'sign the repository file itself',
    });
  }
  const revision =
    Number.isSafeInteger(data.revision) && (data.revision as number) >= 0 ? (data.revision as number) : undefined;
  const timestamp = Math.floor((options.now ?? Date.now)() / 1000);
  const comment = formatComment({
    timestamp,
    file: basename(path),
    repository: data.name,
    ...(revision !== undefined ? { revision } : {}),
  });
  const signature = `${path}.minisig`;
  await writeFileAtomic(signature, signMessage(bytes, secret, comment)).catch((error: unknown) => {
    throw outputIoError(error, signature, 'cannot write');
  });
  return {
    signature,
    keyId: keyId(secret.keyNum),
    repository: data.name,
    ...(revision !== undefined ? { revision } : {}),
    timestamp,
  };
}

// Key files: reading a public key given as a file or its RW… line, a secret key with its password, and writing a pair.
import { open, readFile, stat } from 'node:fs/promises';
import { TemplatesError } from '../errors.js';
import {
  formatPublicKey,
  formatSecretKey,
  generateSecretKey,
  keyId,
  parsePublicKey,
  parseSecretKey,
  type PublicKey,
  type SecretKey,
} from './minisign.js';

const keyFileError = (path: string, error: unknown) =>
  new TemplatesError(
    'KEY_INVALID',
    `${path}: cannot read the key: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    { file: path, hint: 'check the key path' },
    { cause: error },
  );

/** A public key from `RW…` itself or from a `.pub` file. */
export async function readPublicKey(given: string): Promise<PublicKey> {
  if (/^RW[A-Za-z0-9+/]{40,}={0,2}$/.test(given.trim())) return parsePublicKey(given, 'the public key');
  const text = await readFile(given, 'utf8').catch((error: unknown) => {
    throw keyFileError(given, error);
  });
  return parsePublicKey(text, given);
}

/** A secret key file; `password` is called only for an encrypted key. */
export async function readSecretKey(path: string, password: () => Promise<string>): Promise<SecretKey> {
  const text = await readFile(path, 'utf8').catch((error: unknown) => {
    throw keyFileError(path, error);
  });
  return parseSecretKey(text, path, password);
}

/** Writes a new key pair: `path` (the secret key, 0600, encrypted when a password is given) and `path.pub`; never over existing files unless `force`. */
export async function writeKeyPair(
  path: string,
  password: string | undefined,
  force: boolean,
): Promise<{ keyId: string; publicKey: string }> {
  if (!force) {
    for (const file of [path, `${path}.pub`]) {
      if (
        await stat(file).then(
          () => true,
          () => false,
        )
      )
        throw new TemplatesError('USAGE', `${file} exists: refusing to overwrite a key`, {
          file,
          hint: 'choose another --output, or pass --force',
        });
    }
  }
  const secret = generateSecretKey();
  const write = async (file: string, text: string, mode: number) => {
    const handle = await open(file, force ? 'w' : 'wx', mode).catch((error: unknown) => {
      throw new TemplatesError(
        'OUTPUT_IO',
        `${file}: cannot write: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
        { file },
        { cause: error },
      );
    });
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
  };
  const publicText = formatPublicKey(secret);
  await write(path, await formatSecretKey(secret, password), 0o600);
  await write(`${path}.pub`, publicText, 0o644);
  return { keyId: keyId(secret.keyNum), publicKey: publicText.split('\n')[1]! };
}

// minisign's formats (pure but for crypto): Ed25519 key pairs, secret keys (scrypt-encrypted or not) and prehashed signatures.
import { crypto } from '../util/builtins.js';
import { TemplatesError } from '../errors.js';
import { blake2b } from './blake2b.js';

export interface PublicKey {
  /** minisign's key number (8 bytes); shown as its ID, hex of the little-endian number. */
  keyNum: Buffer;
  key: Buffer;
}

export interface SecretKey extends PublicKey {
  /** The Ed25519 seed (32 bytes). */
  seed: Buffer;
}

export interface Signed {
  keyId: string;
  trustedComment: string;
}

const ED = Buffer.from('Ed');
const ED_PREHASHED = Buffer.from('ED');
const KDF_SCRYPT = Buffer.from('Sc');
const KDF_NONE = Buffer.from([0, 0]);
const CHK_BLAKE2B = Buffer.from('B2');
const PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI = Buffer.from('302a300506032b6570032100', 'hex');
/** libsodium's scryptsalsa208sha256 "sensitive" limits, minisign's defaults: N = 2^20, r = 8, p = 1 (1 GiB). */
const OPSLIMIT = 33_554_432n;
const MEMLIMIT = 1_073_741_824n;

export const keyId = (keyNum: Buffer) => Buffer.from(keyNum).reverse().toString('hex').toUpperCase();

const invalid = (where: string, why: string, hint = 'use a key written by templates keygen or minisign -G') =>
  new TemplatesError('KEY_INVALID', `${where}: ${why}`, { file: where, hint });

/** The base64 line of a minisign file: the first line that is not a comment. */
function payload(text: string): Buffer {
  const line =
    text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .find((l) => l && !/^(untrusted|trusted) comment:/.test(l)) ?? '';
  return /^[A-Za-z0-9+/]+={0,2}$/.test(line) ? Buffer.from(line, 'base64') : Buffer.alloc(0);
}

/** A public key from a `.pub` file's text or its bare `RW…` line. */
export function parsePublicKey(text: string, where: string): PublicKey {
  const bytes = payload(text);
  if (bytes.length === 158)
    throw invalid(
      where,
      'this is a secret key, not a public key',
      'give the public key: the KEY.pub beside it, or its RW… line',
    );
  if (bytes.length !== 42 || !bytes.subarray(0, 2).equals(ED))
    throw invalid(where, 'not a minisign public key (RW… in base64)');
  return { keyNum: bytes.subarray(2, 10), key: bytes.subarray(10, 42) };
}

export function formatPublicKey(key: PublicKey): string {
  return `untrusted comment: minisign public key ${keyId(key.keyNum)}\n${Buffer.concat([ED, key.keyNum, key.key]).toString('base64')}\n`;
}

/** A new key pair with a random key number. */
export function generateSecretKey(): SecretKey {
  const { privateKey, publicKey } = crypto().generateKeyPairSync('ed25519');
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8.length);
  const key = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI.length);
  return { keyNum: crypto().randomBytes(8), key, seed };
}

/** libsodium's pickparams: scrypt's N, r, p from minisign's opslimit and memlimit. */
function scryptParams(opslimit: bigint, memlimit: bigint): { N: number; r: number; p: number } {
  const ops = opslimit < 32768n ? 32768n : opslimit;
  const r = 8n;
  let log2 = 1n;
  if (ops < memlimit / 32n) {
    const maxN = ops / (r * 4n);
    while (log2 < 63n && !(1n << log2 > maxN / 2n)) log2++;
    return { N: Number(1n << log2), r: 8, p: 1 };
  }
  const maxN = memlimit / (r * 128n);
  while (log2 < 63n && !(1n << log2 > maxN / 2n)) log2++;
  let maxrp = ops / 4n / (1n << log2);
  if (maxrp > 0x3fffffffn) maxrp = 0x3fffffffn;
  return { N: Number(1n << log2), r: 8, p: Math.max(1, Number(maxrp / r)) };
}

function scryptStream(password: string, salt: Buffer, opslimit: bigint, memlimit: bigint): Promise<Buffer> {
  const { N, r, p } = scryptParams(opslimit, memlimit);
  return new Promise((resolve, reject) => {
    crypto().scrypt(
      Buffer.from(password, 'utf8'),
      salt,
      104,
      { N, r, p, maxmem: 128 * r * N * p + 64 * 1024 * 1024 },
      (error, key) => (error ? reject(error) : resolve(key)),
    );
  });
}

const checksum = (keyNum: Buffer, seed: Buffer, key: Buffer) => blake2b(Buffer.concat([ED, keyNum, seed, key]), 32);

/** A secret key file's text; `password` is asked only when the key is encrypted. */
export async function parseSecretKey(text: string, where: string, password: () => Promise<string>): Promise<SecretKey> {
  const bytes = payload(text);
  if (bytes.length !== 158 || !bytes.subarray(0, 2).equals(ED) || !bytes.subarray(4, 6).equals(CHK_BLAKE2B))
    throw invalid(where, 'not a minisign secret key');
  const kdf = bytes.subarray(2, 4);
  let secret = Buffer.from(bytes.subarray(54, 158));
  if (kdf.equals(KDF_SCRYPT)) {
    const stream = await scryptStream(
      await password(),
      bytes.subarray(6, 38),
      bytes.readBigUInt64LE(38),
      bytes.readBigUInt64LE(46),
    );
    secret = Buffer.from(secret.map((byte, i) => byte ^ stream[i]!));
  } else if (!kdf.equals(KDF_NONE)) {
    throw invalid(where, 'unknown key derivation');
  }
  const keyNum = secret.subarray(0, 8);
  const seed = secret.subarray(8, 40);
  const key = secret.subarray(40, 72);
  // minisign -W leaves an unencrypted key's checksum zero; an encrypted key's tells a wrong password.
  if (kdf.equals(KDF_SCRYPT) && !crypto().timingSafeEqual(checksum(keyNum, seed, key), secret.subarray(72, 104))) {
    throw invalid(
      where,
      'wrong password for the secret key (its checksum does not match)',
      'give the password the key was written with',
    );
  }
  return { keyNum, seed, key };
}

/** A secret key file's text: encrypted with scrypt as minisign does when a password is given, else unencrypted (minisign -W). */
export async function formatSecretKey(secret: SecretKey, password?: string): Promise<string> {
  const plain = Buffer.concat([
    secret.keyNum,
    secret.seed,
    secret.key,
    checksum(secret.keyNum, secret.seed, secret.key),
  ]);
  const limits = Buffer.alloc(16);
  let salt = Buffer.alloc(32);
  let body = plain;
  if (password !== undefined) {
    salt = crypto().randomBytes(32);
    limits.writeBigUInt64LE(OPSLIMIT, 0);
    limits.writeBigUInt64LE(MEMLIMIT, 8);
    const stream = await scryptStream(password, salt, OPSLIMIT, MEMLIMIT);
    body = Buffer.from(plain.map((byte, i) => byte ^ stream[i]!));
  }
  const bytes = Buffer.concat([ED, password !== undefined ? KDF_SCRYPT : KDF_NONE, CHK_BLAKE2B, salt, limits, body]);
  return `untrusted comment: minisign encrypted secret key\n${bytes.toString('base64')}\n`;
}

const privateKeyOf = (secret: SecretKey) =>
  crypto().createPrivateKey({ key: Buffer.concat([PKCS8, secret.seed]), format: 'der', type: 'pkcs8' });
const publicKeyOf = (key: PublicKey) =>
  crypto().createPublicKey({ key: Buffer.concat([SPKI, key.key]), format: 'der', type: 'spki' });
const prehash = (message: Buffer) => crypto().createHash('blake2b512').update(message).digest();

/** A `.minisig` of `message`: a prehashed (`ED`) signature, and the global signature over it and the trusted comment. */
export function signMessage(
  message: Buffer,
  secret: SecretKey,
  trustedComment: string,
  untrustedComment = 'signature from minisign secret key',
): string {
  if (/[\r\n]/.test(trustedComment) || /[\r\n]/.test(untrustedComment))
    throw new TemplatesError('USAGE', 'a signature comment must be one line');
  const key = privateKeyOf(secret);
  const signature = crypto().sign(null, prehash(message), key);
  const global = crypto().sign(null, Buffer.concat([signature, Buffer.from(trustedComment, 'utf8')]), key);
  return `untrusted comment: ${untrustedComment}\n${Buffer.concat([ED_PREHASHED, secret.keyNum, signature]).toString('base64')}\ntrusted comment: ${trustedComment}\n${global.toString('base64')}\n`;
}

export type VerifyFailure = 'malformed' | 'unknown-key' | 'bad-signature';

/** Checks a `.minisig` over `message` with any of `keys`: the signer's key ID and trusted comment, or why it fails. */
export function verifyMessage(
  message: Buffer,
  signatureText: string,
  keys: PublicKey[],
): Signed | { failure: VerifyFailure; keyId?: string } {
  const lines = signatureText.split(/\r?\n/);
  const sigLine = lines.findIndex((line) => line.trim() && !line.startsWith('untrusted comment:'));
  const trusted = lines[sigLine + 1] ?? '';
  const sig = Buffer.from(lines[sigLine]?.trim() ?? '', 'base64');
  const global = Buffer.from(lines[sigLine + 2]?.trim() ?? '', 'base64');
  if (sigLine < 0 || sig.length !== 74 || !trusted.startsWith('trusted comment: ') || global.length !== 64)
    return { failure: 'malformed' };
  const algorithm = sig.subarray(0, 2);
  if (!algorithm.equals(ED) && !algorithm.equals(ED_PREHASHED)) return { failure: 'malformed' };
  const keyNum = sig.subarray(2, 10);
  const signer = keyId(keyNum);
  const key = keys.find((k) => k.keyNum.equals(keyNum));
  if (!key) return { failure: 'unknown-key', keyId: signer };
  const publicKey = publicKeyOf(key);
  const signature = sig.subarray(10);
  const trustedComment = trusted.slice('trusted comment: '.length);
  const ok =
    crypto().verify(null, algorithm.equals(ED_PREHASHED) ? prehash(message) : message, publicKey, signature) &&
    crypto().verify(null, Buffer.concat([signature, Buffer.from(trustedComment, 'utf8')]), publicKey, global);
  return ok ? { keyId: signer, trustedComment } : { failure: 'bad-signature', keyId: signer };
}

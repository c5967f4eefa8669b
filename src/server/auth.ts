// Users and tokens: an htpasswd -B file (bcrypt only), HS256 JWTs signed with a secret kept in a 0600 file.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TemplatesError } from '../errors.js';

export interface Users {
  /** True when `password` is the user's; false for unknown users too (after the same work, so timing tells nothing). */
  check(user: string, password: string): Promise<boolean>;
  size: number;
}

/** A bcrypt hash as `htpasswd -B` writes it ($2y$), or as other tools do ($2a$, $2b$). */
const BCRYPT = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

/** `USER:HASH` lines (bcrypt only; blank lines and `#` comments skipped): the hash of each user, or CONFIG_INVALID. */
export function parseHtpasswd(text: string, path: string): Map<string, string> {
  const hashes = new Map<string, string>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (colon <= 0 || !BCRYPT.test(hash)) {
      throw new TemplatesError(
        'CONFIG_INVALID',
        `${path}:${index + 1}: ${colon <= 0 ? 'not USER:HASH' : `the password of "${user}" is not a bcrypt hash`}`,
        {
          file: path,
          hint: 'only bcrypt is accepted: htpasswd -B FILE USER',
        },
      );
    }
    hashes.set(user, hash);
  });
  return hashes;
}

/** Reads an htpasswd file; any entry that is not bcrypt is a CONFIG_INVALID error naming its line. */
export async function loadHtpasswd(path: string): Promise<Users> {
  const text = await readFile(path, 'utf8').catch((error: unknown) => {
    throw new TemplatesError(
      'CONFIG_INVALID',
      `${path}: cannot read the htpasswd file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      {
        file: path,
        hint: 'create it with: htpasswd -B -c FILE USER',
      },
      { cause: error },
    );
  });
  const hashes = parseHtpasswd(text, path);
  const { default: bcrypt } = await import('bcryptjs');
  // Compared against for unknown users, so a wrong user costs as much as a wrong password.
  const decoy = bcrypt.hashSync(randomBytes(16).toString('hex'), 10);
  return {
    size: hashes.size,
    async check(user, password) {
      const hash = hashes.get(user);
      const ok = await bcrypt.compare(password, hash ?? decoy);
      return hash !== undefined && ok;
    },
  };
}

/** The token secret: read from `path`, or 32 random bytes written there (mode 0600) on first start. */
export async function loadSecret(path: string): Promise<Uint8Array> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    if (text.length >= 32) return new TextEncoder().encode(text);
    throw new TemplatesError('CONFIG_INVALID', `${path}: the secret is shorter than 32 characters`, {
      file: path,
      hint: 'remove it to have a new one made, or put 32+ random characters in it',
    });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = randomBytes(32).toString('hex');
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, `${secret}\n`, { mode: 0o600, flag: 'wx' }).catch(async (error: unknown) => {
    // Another server made it first: use theirs.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  });
  return new TextEncoder().encode((await readFile(path, 'utf8')).trim());
}

export interface Tokens {
  issue(user: string): Promise<{ auth_token: string; expires_in: number }>;
  /** The token's user, or why it is refused. */
  verify(token: string): Promise<{ user: string } | { refused: 'expired' | 'invalid' }>;
}

export function createTokens(secret: Uint8Array, ttlSeconds: number, now: () => number): Tokens {
  return {
    async issue(user) {
      const { SignJWT } = await import('jose');
      const issuedAt = Math.floor(now() / 1000);
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(user)
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + ttlSeconds)
        .setIssuer('templates')
        .sign(secret);
      return { auth_token: token, expires_in: ttlSeconds };
    },
    async verify(token) {
      const { jwtVerify, errors } = await import('jose');
      try {
        const { payload } = await jwtVerify(token, secret, {
          algorithms: ['HS256'],
          issuer: 'templates',
          currentDate: new Date(now()),
        });
        return typeof payload.sub === 'string' ? { user: payload.sub } : { refused: 'invalid' };
      } catch (error) {
        return { refused: error instanceof errors.JWTExpired ? 'expired' : 'invalid' };
      }
    },
  };
}

/** User and password of a Basic Authorization header, or undefined. */
export function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match) return undefined;
  const text = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? undefined : { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** The token of a Bearer Authorization header, or undefined. */
export function parseBearer(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}

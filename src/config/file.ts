// Find and read the config file: --config, else TEMPLATES_CONFIG, else $XDG_CONFIG_HOME/templates/config.json.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { TemplatesError, isTemplatesError } from '../errors.js';
import type { Credential } from '../http/credentials.js';
import type { MirrorRule } from '../http/mirrors.js';
import { parsePublicKey } from '../trust/minisign.js';
import type { TrustRule } from '../trust/policy.js';

function defaultConfigPath(env: Record<string, string | undefined>, home: string): string {
  return join(env.XDG_CONFIG_HOME || join(home, '.config'), 'templates', 'config.json');
}

/** The config object and its path; undefined when the default file does not exist (an explicit one must). */
export async function readConfigFile(
  explicit: string | undefined,
  env: Record<string, string | undefined>,
  home: string,
): Promise<{ path: string; data: Record<string, unknown> } | undefined> {
  const given = explicit ?? (env.TEMPLATES_CONFIG || undefined);
  const path = resolve(given ?? defaultConfigPath(env, home));
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && given === undefined) return undefined;
    throw new TemplatesError(
      'CONFIG_INVALID',
      `${path}: cannot read the config file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      {
        file: path,
        hint: 'check --config / TEMPLATES_CONFIG',
      },
      { cause: error },
    );
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new TemplatesError(
      'CONFIG_INVALID',
      `${path}: invalid JSON: ${(error as Error).message}`,
      { file: path, hint: 'fix the config file' },
      { cause: error },
    );
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new TemplatesError('CONFIG_INVALID', `${path}: expected a JSON object`, {
      file: path,
      hint: 'fix the config file',
    });
  return { path, data: data as Record<string, unknown> };
}

/**
 * The config file's `auth`: `[{"prefix": "https://cache:7480/", "token": "…"}]` or with `username` and `password`
 * (Basic); sent to URLs starting with the prefix. Anything else is CONFIG_INVALID.
 */
export function configuredCredentials(file: { path: string; data: Record<string, unknown> } | undefined): Credential[] {
  const value = file?.data.auth;
  if (value === undefined) return [];
  const bad = () =>
    new TemplatesError(
      'CONFIG_INVALID',
      `${file!.path}: auth: expected [{"prefix": URL, "token": T} or {"prefix": URL, "username": U, "password": P}]`,
      { file: file!.path, hint: 'fix the config file' },
    );
  if (!Array.isArray(value)) throw bad();
  return value.map((item: unknown) => {
    const entry = item as Record<string, unknown> | null;
    if (
      typeof entry !== 'object' ||
      entry === null ||
      typeof entry.prefix !== 'string' ||
      !/^https?:\/\//.test(entry.prefix)
    )
      throw bad();
    if (typeof entry.token === 'string') return { prefix: entry.prefix, token: entry.token };
    if (typeof entry.username === 'string' && (entry.password === undefined || typeof entry.password === 'string')) {
      return { prefix: entry.prefix, username: entry.username, password: (entry.password as string | undefined) ?? '' };
    }
    throw bad();
  });
}

/**
 * Mirror rules from the config file's `mirrors` (`{"<baseurl prefix>": ["<mirror prefix>", …]}`) and
 * TEMPLATES_MIRRORS (the same JSON, or `PREFIX=MIRROR[,MIRROR…]` pairs separated by spaces), the variable's first.
 */
export function configuredMirrors(
  file: { path: string; data: Record<string, unknown> } | undefined,
  env: Record<string, string | undefined>,
): MirrorRule[] {
  const rules: MirrorRule[] = [];
  const text = env.TEMPLATES_MIRRORS?.trim();
  if (text) {
    const where = 'TEMPLATES_MIRRORS';
    if (text.startsWith('{')) {
      let data: unknown;
      try {
        data = JSON.parse(text);
      } catch {
        data = undefined;
      }
      rules.push(...mirrorRules(data, where));
    } else {
      for (const pair of text.split(/\s+/)) {
        const at = pair.indexOf('=');
        rules.push(
          ...mirrorRules(
            at > 0
              ? {
                  [pair.slice(0, at)]: pair
                    .slice(at + 1)
                    .split(',')
                    .filter(Boolean),
                }
              : undefined,
            where,
          ),
        );
      }
    }
  }
  if (file?.data.mirrors !== undefined)
    rules.push(...mirrorRules(file.data.mirrors, `${file.path}: mirrors`, file.path));
  return rules;
}

const httpUrl = (text: unknown) => typeof text === 'string' && /^https?:\/\/[^/]/i.test(text);

function mirrorRules(data: unknown, where: string, path?: string): MirrorRule[] {
  const bad = () =>
    new TemplatesError(
      'CONFIG_INVALID',
      `${where}: expected {"<http(s) URL prefix>": ["<mirror URL prefix>", …]}${path ? '' : ' or PREFIX=MIRROR,MIRROR pairs'}`,
      {
        ...(path ? { file: path } : {}),
        hint: path ? 'fix the config file' : 'fix TEMPLATES_MIRRORS',
      },
    );
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw bad();
  return Object.entries(data).map(([prefix, mirrors]) => {
    if (!httpUrl(prefix) || !Array.isArray(mirrors) || mirrors.length === 0 || !mirrors.every(httpUrl)) throw bad();
    return { prefix, mirrors: mirrors as string[] };
  });
}

/** The config file's `trust`: `[{"repo": "<URL, path prefix or name>", "publicKey": "RW…"}]`; anything else is CONFIG_INVALID. */
export function configuredTrust(file: { path: string; data: Record<string, unknown> } | undefined): TrustRule[] {
  const value = file?.data.trust;
  if (value === undefined) return [];
  const bad = (why: string) =>
    new TemplatesError('CONFIG_INVALID', `${file!.path}: trust: ${why}`, {
      file: file!.path,
      hint: 'expected [{"repo": URL, path prefix or name, "publicKey": "RW…"}] (docs/trust.md)',
    });
  if (!Array.isArray(value)) throw bad('expected an array');
  return value.map((item: unknown, i) => {
    const entry = item as Record<string, unknown> | null;
    if (
      typeof entry !== 'object' ||
      entry === null ||
      typeof entry.repo !== 'string' ||
      !entry.repo ||
      typeof entry.publicKey !== 'string'
    )
      throw bad(`[${i}]: expected {"repo", "publicKey"}`);
    try {
      return { repo: entry.repo, key: parsePublicKey(entry.publicKey, `${file!.path}: trust[${i}].publicKey`) };
    } catch (error) {
      throw isTemplatesError(error) ? bad(`[${i}].publicKey is not a minisign public key (RW…)`) : error;
    }
  });
}

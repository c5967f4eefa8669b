// Find and read the config file: --config, else TEMPLATES_CONFIG, else $XDG_CONFIG_HOME/templates/config.json.
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { TemplatesError } from '../errors.js';
import type { Credential } from '../http/credentials.js';

export function defaultConfigPath(env: Record<string, string | undefined>, home: string): string {
  return join(env.XDG_CONFIG_HOME || join(home, '.config'), 'templates', 'config.json');
}

/** The config object and its path; undefined when the default file does not exist (an explicit one must). */
export async function readConfigFile(explicit: string | undefined, env: Record<string, string | undefined>, home: string): Promise<{ path: string; data: Record<string, unknown> } | undefined> {
  const given = explicit ?? (env.TEMPLATES_CONFIG || undefined);
  const path = resolve(given ?? defaultConfigPath(env, home));
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && given === undefined) return undefined;
    throw new TemplatesError('CONFIG_INVALID', `${path}: cannot read the config file: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {
      file: path,
      hint: 'check --config / TEMPLATES_CONFIG',
    }, { cause: error });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new TemplatesError('CONFIG_INVALID', `${path}: invalid JSON: ${(error as Error).message}`, { file: path, hint: 'fix the config file' }, { cause: error });
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new TemplatesError('CONFIG_INVALID', `${path}: expected a JSON object`, { file: path, hint: 'fix the config file' });
  return { path, data: data as Record<string, unknown> };
}

/**
 * The config file's `auth`: `[{"prefix": "https://cache:7480/", "token": "…"}]` or with `username` and `password`
 * (Basic); sent to URLs starting with the prefix. Anything else is CONFIG_INVALID.
 */
export function configuredCredentials(file: { path: string; data: Record<string, unknown> } | undefined): Credential[] {
  const value = file?.data.auth;
  if (value === undefined) return [];
  const bad = () => new TemplatesError('CONFIG_INVALID', `${file!.path}: auth: expected [{"prefix": URL, "token": T} or {"prefix": URL, "username": U, "password": P}]`, { file: file!.path, hint: 'fix the config file' });
  if (!Array.isArray(value)) throw bad();
  return value.map((item: unknown) => {
    const entry = item as Record<string, unknown> | null;
    if (typeof entry !== 'object' || entry === null || typeof entry.prefix !== 'string' || !/^https?:\/\//.test(entry.prefix)) throw bad();
    if (typeof entry.token === 'string') return { prefix: entry.prefix, token: entry.token };
    if (typeof entry.username === 'string' && (entry.password === undefined || typeof entry.password === 'string')) {
      return { prefix: entry.prefix, username: entry.username, password: (entry.password as string | undefined) ?? '' };
    }
    throw bad();
  });
}

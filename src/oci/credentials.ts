// Registry credentials as container tools keep them: --creds-file, $REGISTRY_AUTH_FILE, containers' and docker's auth.json.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TemplatesError } from '../errors.js';

export interface RegistryLogin {
  username: string;
  password: string;
  /** The file it came from, for messages. */
  from: string;
}

/** The files searched, in order: an explicit one (Context.credsFile: --creds-file, TEMPLATES_CREDS_FILE), $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json. */
function authFiles(env: Record<string, string | undefined>, home: string, explicit?: string): string[] {
  return [
    ...(explicit ? [explicit] : []),
    ...(env.REGISTRY_AUTH_FILE ? [env.REGISTRY_AUTH_FILE] : []),
    ...(env.XDG_RUNTIME_DIR ? [join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json')] : []),
    join(env.DOCKER_CONFIG || join(home, '.docker'), 'config.json'),
  ];
}

/** `host[:port]` of an `auths` key: `https://index.docker.io/v1/`, `reg.example:5000` or `reg.example:5000/ns`. */
const keyHost = (key: string) => key.replace(/^https?:\/\//, '').split('/')[0]!;

/**
 * The login for `host` from the first file that has one (`auths[host].auth` = base64 `user:password`, or `username` and
 * `password`). An explicit file that cannot be read or parsed is CONFIG_INVALID; the others are skipped when absent.
 */
async function findLogin(
  host: string,
  files: string[],
  explicit: string | undefined,
): Promise<RegistryLogin | undefined> {
  for (const file of files) {
    let data: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
    try {
      data = JSON.parse(await readFile(file, 'utf8')) as typeof data;
    } catch (error) {
      if (file === explicit) {
        throw new TemplatesError(
          'CONFIG_INVALID',
          `${file}: cannot read registry credentials: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
          {
            file,
            hint: 'give a file in the format of ~/.docker/config.json: {"auths": {"HOST": {"auth": "base64(user:password)"}}}',
          },
          { cause: error },
        );
      }
      continue;
    }
    for (const [key, entry] of Object.entries(data.auths ?? {})) {
      if (keyHost(key) !== host || typeof entry !== 'object' || entry === null) continue;
      if (typeof entry.auth === 'string' && entry.auth) {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), from: file };
      }
      if (typeof entry.username === 'string' && typeof entry.password === 'string')
        return { username: entry.username, password: entry.password, from: file };
    }
  }
  return undefined;
}

/** The login for a registry host from the usual files, `credsFile` (the context's) read first and required. */
export function registryLogin(
  host: string,
  env: Record<string, string | undefined>,
  home: string,
  credsFile?: string,
): Promise<RegistryLogin | undefined> {
  const explicit = credsFile;
  return findLogin(host, authFiles(env, home, explicit), explicit);
}

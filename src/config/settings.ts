// Effective settings (pure): each from a flag, else the environment, else the config file, else its default; with its origin.
import { TemplatesError } from '../errors.js';
import { splitRepoList } from '../repository/find.js';

export type Origin = 'flag' | 'env' | 'file' | 'default';

export interface Setting<T> {
  value: T;
  from: Origin;
  /** The flag, variable or file key it came from. */
  name?: string;
}

export interface Settings {
  store: Setting<string>;
  repos: Setting<string[]>;
  lockWaitSeconds: Setting<number>;
  lockStaleSeconds: Setting<number>;
  partialMaxAgeSeconds: Setting<number>;
  maxImageBytes: Setting<number>;
  connectTimeoutSeconds: Setting<number>;
  idleTimeoutSeconds: Setting<number>;
  retries: Setting<number>;
  repoTtlSeconds: Setting<number>;
  offline: Setting<boolean>;
  listen: Setting<string>;
  htpasswd: Setting<string>;
  anonymous: Setting<string>;
  tokenTtlSeconds: Setting<number>;
  secretFile: Setting<string>;
  publicUrl: Setting<string>;
  tlsCert: Setting<string>;
  tlsKey: Setting<string>;
  warm: Setting<string>;
  graceSeconds: Setting<number>;
  minFreeBytes: Setting<number>;
  workers: Setting<number>;
  maxSecondsToLive: Setting<number>;
  server: Setting<string>;
  scrapeIntervalSeconds: Setting<number>;
  keepXz: Setting<boolean>;
  requireSignatures: Setting<boolean>;
  maxSignatureAge: Setting<number>;
  pruneOlderThanSeconds: Setting<number>;
  pruneKeep: Setting<number>;
  pruneMaxBytes: Setting<number>;
  storeMaxBytes: Setting<number>;
  storeMinFreeBytes: Setting<number>;
}

type Kind = 'path' | 'paths' | 'number' | 'boolean' | 'string';

/** Every setting: its config-file key, environment variable, kind and default. */
export const SETTINGS: Record<keyof Settings, { env: string; kind: Kind; describe: string }> = {
  store: { env: 'TEMPLATES_STORE', kind: 'path', describe: 'the store directory' },
  repos: { env: 'TEMPLATES_REPOS', kind: 'paths', describe: 'repository files, directories and URLs' },
  lockWaitSeconds: {
    env: 'TEMPLATES_LOCK_WAIT_SECONDS',
    kind: 'number',
    describe: "how long to wait for another process's lock",
  },
  lockStaleSeconds: {
    env: 'TEMPLATES_LOCK_STALE_SECONDS',
    kind: 'number',
    describe: "an older templates' lock directory not refreshed for this long is replaced by lago's lock file",
  },
  partialMaxAgeSeconds: {
    env: 'TEMPLATES_PARTIAL_MAX_AGE_SECONDS',
    kind: 'number',
    describe: 'older interrupted downloads are not resumed',
  },
  maxImageBytes: { env: 'TEMPLATES_MAX_IMAGE_BYTES', kind: 'number', describe: 'larger decoded images are refused' },
  connectTimeoutSeconds: { env: 'TEMPLATES_CONNECT_TIMEOUT_SECONDS', kind: 'number', describe: 'HTTP connect timeout' },
  idleTimeoutSeconds: {
    env: 'TEMPLATES_IDLE_TIMEOUT_SECONDS',
    kind: 'number',
    describe: 'HTTP: no byte for this long fails',
  },
  retries: { env: 'TEMPLATES_RETRIES', kind: 'number', describe: 'retries of HTTP 429/5xx and resets' },
  repoTtlSeconds: {
    env: 'TEMPLATES_REPO_TTL_SECONDS',
    kind: 'number',
    describe: 'a cached repository JSON younger than this is used without asking the server',
  },
  offline: { env: 'TEMPLATES_OFFLINE', kind: 'boolean', describe: 'never use the network' },
  listen: { env: 'TEMPLATES_LISTEN', kind: 'string', describe: 'serve: HOST:PORT to listen on (port 0: any free one)' },
  htpasswd: {
    env: 'TEMPLATES_HTPASSWD',
    kind: 'string',
    describe: 'serve: users from an htpasswd -B file; empty: no auth',
  },
  anonymous: {
    env: 'TEMPLATES_ANONYMOUS',
    kind: 'string',
    describe:
      'serve with auth: "none", "read" to open /repos/ without a token, or "write" to open everything (jobs too)',
  },
  tokenTtlSeconds: {
    env: 'TEMPLATES_TOKEN_TTL_SECONDS',
    kind: 'number',
    describe: 'serve: lifetime of tokens from /auth_token',
  },
  secretFile: {
    env: 'TEMPLATES_SECRET_FILE',
    kind: 'string',
    describe: 'serve: the token signing secret (created 0600); empty: <store>/.serve/secret',
  },
  publicUrl: {
    env: 'TEMPLATES_PUBLIC_URL',
    kind: 'string',
    describe: 'serve: the URL neighbours use (behind a proxy); empty: the listening address',
  },
  tlsCert: {
    env: 'TEMPLATES_TLS_CERT',
    kind: 'string',
    describe: 'serve: a PEM certificate (chain): serve https only, read again on SIGHUP; empty: plain http',
  },
  tlsKey: {
    env: 'TEMPLATES_TLS_KEY',
    kind: 'string',
    describe: "serve: the certificate's PEM private key",
  },
  warm: {
    env: 'TEMPLATES_WARM',
    kind: 'string',
    describe: 'serve: "newest" pulls the newest version of every template the store lacks, after each reload; "none"',
  },
  graceSeconds: {
    env: 'TEMPLATES_GRACE_SECONDS',
    kind: 'number',
    describe: 'serve: on SIGTERM, time for responses and pulls in flight to finish',
  },
  minFreeBytes: {
    env: 'TEMPLATES_MIN_FREE_BYTES',
    kind: 'number',
    describe: 'serve: /readyz fails below this much free space in the store',
  },
  workers: { env: 'TEMPLATES_WORKERS', kind: 'number', describe: 'serve: on-demand jobs fetching at once' },
  maxSecondsToLive: {
    env: 'TEMPLATES_MAX_SECONDS_TO_LIVE',
    kind: 'number',
    describe: 'serve: the longest seconds_to_live a job may ask for',
  },
  server: { env: 'TEMPLATES_SERVER', kind: 'string', describe: 'templates job: the templates serve URL to ask' },
  scrapeIntervalSeconds: {
    env: 'TEMPLATES_SCRAPE_INTERVAL_SECONDS',
    kind: 'number',
    describe: 'serve: how often repositories and their mirrors are checked (0: never)',
  },
  keepXz: {
    env: 'TEMPLATES_KEEP_XZ',
    kind: 'boolean',
    describe: 'keep each fetched .xz beside its image (push uploads it as is; serve always keeps it)',
  },
  requireSignatures: {
    env: 'TEMPLATES_REQUIRE_SIGNATURES',
    kind: 'boolean',
    describe: 'refuse a repository no trusted key applies to (docs/trust.md)',
  },
  maxSignatureAge: {
    env: 'TEMPLATES_MAX_SIGNATURE_AGE',
    kind: 'number',
    describe: 'seconds: refuse a repository signed longer ago than this (0: any age)',
  },
  pruneOlderThanSeconds: {
    env: 'TEMPLATES_PRUNE_OLDER_THAN_SECONDS',
    kind: 'number',
    describe: "the prune policy: entries not used for this long go (0: no age limit); prune's flags override it",
  },
  pruneKeep: {
    env: 'TEMPLATES_PRUNE_KEEP',
    kind: 'number',
    describe: 'the prune policy: keep the newest N versions of each template (0: all)',
  },
  pruneMaxBytes: {
    env: 'TEMPLATES_PRUNE_MAX_BYTES',
    kind: 'number',
    describe: 'the prune policy: least recently used entries go while the store is larger (0: no limit)',
  },
  storeMaxBytes: {
    env: 'TEMPLATES_STORE_MAX_BYTES',
    kind: 'number',
    describe:
      'a fetch that would make the store larger evicts least recently used entries nothing depends on first (0: no limit)',
  },
  storeMinFreeBytes: {
    env: 'TEMPLATES_STORE_MIN_FREE_BYTES',
    kind: 'number',
    describe:
      "a fetch keeps this much free on the store's filesystem, evicting least recently used entries first (0: only room for the image)",
  },
};

export interface SettingsInput {
  /** Values given on the command line (already typed), by setting. */
  flags: Partial<{ [K in keyof Settings]: Settings[K]['value'] }>;
  env: Record<string, string | undefined>;
  /** The config file's object, and its path for messages. */
  file?: { path: string; data: Record<string, unknown> };
  /** Defaults that depend on the machine (the store's default directory). */
  defaults: { store: string };
}

const DEFAULTS = {
  repos: [] as string[],
  lockWaitSeconds: 3600,
  lockStaleSeconds: 10,
  partialMaxAgeSeconds: 86_400,
  maxImageBytes: 2 ** 40,
  connectTimeoutSeconds: 30,
  idleTimeoutSeconds: 60,
  retries: 3,
  repoTtlSeconds: 600,
  offline: false,
  listen: '127.0.0.1:7480',
  htpasswd: '',
  anonymous: 'none',
  tokenTtlSeconds: 3600,
  secretFile: '',
  publicUrl: '',
  tlsCert: '',
  tlsKey: '',
  warm: 'none',
  graceSeconds: 30,
  minFreeBytes: 1024 ** 3,
  workers: 2,
  maxSecondsToLive: 7 * 86_400,
  server: '',
  scrapeIntervalSeconds: 300,
  keepXz: false,
  requireSignatures: false,
  maxSignatureAge: 0,
  pruneOlderThanSeconds: 0,
  pruneKeep: 0,
  pruneMaxBytes: 0,
  storeMaxBytes: 0,
  storeMinFreeBytes: 0,
};

function fromText(kind: Kind, text: string, where: string): unknown {
  if (kind === 'path' || kind === 'string') return text;
  if (kind === 'paths') return splitRepoList(text);
  if (kind === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(text)) return true;
    if (/^(0|false|no|off|)$/i.test(text)) return false;
    throw new TemplatesError('CONFIG_INVALID', `${where}: expected 1/0 or true/false, not ${JSON.stringify(text)}`, {
      hint: 'fix the value',
    });
  }
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0)
    throw new TemplatesError('CONFIG_INVALID', `${where}: expected a number ≥ 0, not ${JSON.stringify(text)}`, {
      hint: 'fix the value',
    });
  return value;
}

function fromJson(kind: Kind, value: unknown, where: string): unknown {
  const ok =
    kind === 'path'
      ? typeof value === 'string' && value.length > 0
      : kind === 'paths'
        ? Array.isArray(value) && value.every((item) => typeof item === 'string')
        : kind === 'boolean'
          ? typeof value === 'boolean'
          : kind === 'string'
            ? typeof value === 'string'
            : typeof value === 'number' && Number.isFinite(value) && value >= 0;
  if (!ok) {
    const expected = {
      path: 'a non-empty string',
      paths: 'an array of strings',
      boolean: 'true or false',
      number: 'a number ≥ 0',
      string: 'a string',
    }[kind];
    throw new TemplatesError('CONFIG_INVALID', `${where}: expected ${expected}`, {
      file: where.split(':')[0]!,
      hint: 'fix the config file',
    });
  }
  return value;
}

/** Resolves every setting; a bad value anywhere is CONFIG_INVALID naming where it came from. */
export function resolveSettings(input: SettingsInput): Settings {
  const out: Partial<Record<keyof Settings, Setting<unknown>>> = {};
  for (const [key, spec] of Object.entries(SETTINGS) as Array<[keyof Settings, (typeof SETTINGS)[keyof Settings]]>) {
    const flag = input.flags[key];
    const envText = input.env[spec.env];
    const fileValue = input.file?.data[key];
    if (flag !== undefined && !(Array.isArray(flag) && flag.length === 0)) out[key] = { value: flag, from: 'flag' };
    else if (envText !== undefined && envText !== '')
      out[key] = { value: fromText(spec.kind, envText, spec.env), from: 'env', name: spec.env };
    else if (fileValue !== undefined)
      out[key] = {
        value: fromJson(spec.kind, fileValue, `${input.file!.path}: ${key}`),
        from: 'file',
        name: input.file!.path,
      };
    else
      out[key] = {
        value: key === 'store' ? input.defaults.store : DEFAULTS[key as Exclude<keyof Settings, 'store'>],
        from: 'default',
      };
  }
  return out as Settings;
}

/** Config-file keys that are not settings: `auth` (credentials per URL prefix), `mirrors` (config/file.ts) and `admins` (serve). */
const OTHER_KEYS = new Set(['auth', 'admins', 'mirrors']);

/** Keys a config file may have; others are reported as warnings (a typo must not pass silently). */
export function unknownKeys(data: Record<string, unknown>): string[] {
  return Object.keys(data).filter((key) => !(key in SETTINGS) && !OTHER_KEYS.has(key));
}

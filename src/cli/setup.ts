// Build the settings, context, store and repository set a command needs from its flags, the environment and the config file.
import { homedir } from 'node:os';
import { configuredCredentials, configuredMirrors, configuredTrust, readConfigFile } from '../config/file.js';
import { resolveSettings, unknownKeys, type Settings } from '../config/settings.js';
import { createContext, type Context } from '../context.js';
import { prunePolicy, type PrunePolicy } from '../manage/prune-plan.js';
import { loadRepositories } from '../repository/find.js';
import type { RepositorySet } from '../repository/set.js';
import { defaultStoreRoot, openStore, type Store } from '../store/store.js';
import { readPublicKey } from '../trust/keys.js';
import type { TrustPolicy } from '../trust/policy.js';
import type { CliIo } from './io.js';
import { seconds, type CommonValues } from './options.js';

export interface Setup {
  settings: Settings;
  context: Context;
  store: Store;
  repositories: RepositorySet;
  warn: (message: string) => void;
}

/** The effective settings, and where each came from (`templates config` prints them). */
/** The configured prune policy (pruneOlderThanSeconds, pruneKeep, pruneMaxBytes): prune without flags, serve's dashboard. */
export function configuredPrunePolicy(settings: Settings): PrunePolicy {
  return prunePolicy({
    olderThanSeconds: settings.pruneOlderThanSeconds.value,
    keep: settings.pruneKeep.value,
    maxBytes: settings.pruneMaxBytes.value,
  });
}

export async function readSettings(values: CommonValues, io: CliIo): Promise<Settings> {
  return (await readConfig(values, io)).settings;
}

/** The settings and the config file they came from (which also holds credentials and serve's admins). */
export async function readConfig(
  values: CommonValues,
  io: CliIo,
): Promise<{ settings: Settings; file?: { path: string; data: Record<string, unknown> } }> {
  const home = io.env.HOME || homedir();
  const file = await readConfigFile(values.config, io.env, home);
  for (const key of file ? unknownKeys(file.data) : [])
    io.stderr.write(`templates: warning: ${file!.path}: unknown setting ${JSON.stringify(key)} ignored\n`);
  const repos = [...(values.repo ?? []), ...(values.repos ?? [])];
  const lockWait = seconds(values['lock-wait'], '--lock-wait');
  const settings = resolveSettings({
    flags: {
      ...(values.store ? { store: values.store } : {}),
      ...(repos.length ? { repos } : {}),
      ...(lockWait !== undefined ? { lockWaitSeconds: lockWait } : {}),
      ...(values.offline ? { offline: true } : {}),
      ...(values['keep-xz'] ? { keepXz: true } : {}),
    },
    env: io.env,
    ...(file ? { file } : {}),
    defaults: { store: defaultStoreRoot(io.env, home) },
  });
  return { settings, ...(file ? { file } : {}) };
}

/** The keys repositories must be signed with: the config's trust rules, --trusted-key, and how strictly. */
async function trustPolicy(
  values: CommonValues,
  settings: Settings,
  file: { path: string; data: Record<string, unknown> } | undefined,
): Promise<TrustPolicy> {
  const maxAge = settings.maxSignatureAge.value;
  return {
    rules: configuredTrust(file),
    keys: await Promise.all((values['trusted-key'] ?? []).map((key) => readPublicKey(key))),
    requireSignatures: settings.requireSignatures.value,
    ...(maxAge > 0 ? { maxSignatureAgeMs: maxAge * 1000 } : {}),
    allowRollback: Boolean(values['allow-rollback']),
  };
}

/** Context and store from the settings, without loading repositories (store-only commands). */
export async function setupStore(
  values: CommonValues,
  io: CliIo,
  env: Record<string, string> = {},
): Promise<Omit<Setup, 'repositories'>> {
  const warn = (message: string) => void io.stderr.write(`templates: warning: ${message}\n`);
  const { settings, file } = await readConfig(values, io);
  const context = createContext({
    credentials: configuredCredentials(file),
    mirrors: configuredMirrors(file, io.env),
    trust: await trustPolicy(values, settings, file),
    env: io.env,
    ...(io.env.TEMPLATES_TOKEN ? { token: io.env.TEMPLATES_TOKEN } : {}),
    ...((env.TEMPLATES_CREDS_FILE ?? io.env.TEMPLATES_CREDS_FILE)
      ? { credsFile: env.TEMPLATES_CREDS_FILE ?? io.env.TEMPLATES_CREDS_FILE }
      : {}),
    maxImageBytes: settings.maxImageBytes.value,
    connectTimeoutMs: settings.connectTimeoutSeconds.value * 1000,
    idleTimeoutMs: settings.idleTimeoutSeconds.value * 1000,
    retries: settings.retries.value,
  });
  const store = await openStore({
    root: settings.store.value,
    lockWaitMs: settings.lockWaitSeconds.value * 1000,
    lockStaleMs: settings.lockStaleSeconds.value * 1000,
    partialMaxAgeMs: settings.partialMaxAgeSeconds.value * 1000,
    keepCompressed: settings.keepXz.value,
    maxBytes: settings.storeMaxBytes.value,
    minFreeBytes: settings.storeMinFreeBytes.value,
  });
  return { settings, context, store, warn };
}

/** Everything a command needs; warnings (skipped repository files, cached copies) go to stderr. */
/** `env`: variables the command's own flags set for the library (such as TEMPLATES_CREDS_FILE from --creds-file). */
export async function setup(values: CommonValues, io: CliIo, env: Record<string, string> = {}): Promise<Setup> {
  const base = await setupStore(values, io, env);
  const { value: repos, from } = base.settings.repos;
  const flagged = from === 'flag';
  const repositories = await loadRepositories({
    context: base.context,
    store: base.store,
    signal: io.signal,
    onWarning: base.warn,
    // --repo must be a repository file; --repos a directory; the environment and the config file mix both.
    repos: flagged ? (values.repo ?? []) : [],
    repoDirs: flagged ? (values.repos ?? []) : [],
    locations: flagged ? [] : repos,
    offline: base.settings.offline.value,
    ttlMs: base.settings.repoTtlSeconds.value * 1000,
    refresh: Boolean(values.refresh),
  });
  return { ...base, repositories };
}

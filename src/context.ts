// The IO context: HTTP client, environment, clock and external tools, made by one factory and passed down.
import { access, constants } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { createHttpClient, type HttpClient } from './http/client.js';
import { createCredentials, type Credential } from './http/credentials.js';
import type { MirrorRule } from './http/mirrors.js';
import { NO_TRUST, type TrustPolicy } from './trust/policy.js';
import { USER_AGENT } from './version.js';

/** How xz is decoded: the system command (multi-threaded) or lzma-native (a fallback where no xz exists). */
export type Decoder = { kind: 'xz'; path: string } | { kind: 'lzma-native' };

export interface Context {
  http: HttpClient;
  env: Record<string, string | undefined>;
  home: string;
  now: () => number;
  /** The xz decoder to use, or undefined when none is available (only needed for xz sources). */
  decoder: () => Promise<Decoder | undefined>;
  /** Threads for each xz decoder (0: one per core); fetching several at once gives each a share of the cores. */
  xzThreads: number;
  /** Sources up to this many bytes are hashed on the main thread; larger ones on a worker thread reading behind the writer. */
  inlineHashMaxBytes: number;
  /** Whether a decoded image reaches its hashing worker through a FIFO (else through a pipe, via the main thread). */
  fifo: boolean;
  /** The zstd command, or undefined when there is none (a listed `.zst` is then passed over for the `.xz`). */
  zstd: () => Promise<string | undefined>;
  /** The qemu-img command. */
  qemuImg: string;
  /** Largest decoded image accepted: decoding stops as soon as an image passes it (a decompression bomb). */
  maxImageBytes: number;
  /** A registry credentials file read first and required (else the usual files; docs/oci.md). */
  credsFile?: string;
  /** Mirrors per URL prefix (the config's `mirrors`, TEMPLATES_MIRRORS), beside those a repository declares. */
  mirrors: MirrorRule[];
  /** Which keys each repository must be signed with, and how strictly (docs/trust.md). */
  trust: TrustPolicy;
}

/** 1 TiB: far above any real template, far below what fills a disk through holes. */
const DEFAULT_MAX_IMAGE_BYTES = 2 ** 40;

export interface ContextOptions {
  env?: Record<string, string | undefined>;
  home?: string;
  http?: HttpClient;
  now?: () => number;
  /** Connect timeout for HTTP sources (default 30 s). */
  connectTimeoutMs?: number;
  /** Idle timeout for HTTP sources: no byte for this long fails the download (default 60 s). */
  idleTimeoutMs?: number;
  /** Retries of HTTP 429/5xx and connection resets (default 3), and the first delay (default 1 s, doubling). */
  retries?: number;
  retryDelayMs?: number;
  /** "auto" (default): the xz command when it is on PATH, else lzma-native. */
  decoder?: 'auto' | 'xz' | 'lzma-native';
  qemuImg?: string;
  /** Threads for each xz decoder (default 0: one per core). */
  xzThreads?: number;
  /**
   * Default 16 MiB: a worker thread costs ~40 ms of CPU to start (ten took 410 ms on 2 cores), while SHA-256 of
   * 16 MiB costs ~10 ms on a CPU with SHA extensions and ~65 ms without.
   */
  inlineHashMaxBytes?: number;
  /** Default true: the decoder writes a FIFO that a worker reads, hashes and writes sparse (no copy through the main thread). */
  fifo?: boolean;
  /** The zstd command (default: `zstd` on PATH); false: never use `.zst` files. */
  zstd?: string | false;
  /** Default 1 TiB. */
  maxImageBytes?: number;
  /** Credentials per URL prefix (the config file's `auth`); ~/.netrc (or $NETRC) is read too. */
  credentials?: Credential[];
  /** A bearer token, sent to a server that asks for one (the CLI's TEMPLATES_TOKEN). */
  token?: string;
  /** A registry credentials file (docker config.json format) read first and required (the CLI's --creds-file). */
  credsFile?: string;
  /** Mirrors per URL prefix (the config file's `mirrors` and TEMPLATES_MIRRORS, from configuredMirrors). */
  mirrors?: MirrorRule[];
  /** Trusted keys and signature rules (default: none, every repository is used unsigned). */
  trust?: TrustPolicy;
}

export async function findExecutable(name: string, path: string | undefined): Promise<string | undefined> {
  for (const dir of (path ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

export function createContext(options: ContextOptions = {}): Context {
  const env = options.env ?? process.env;
  const choice = options.decoder ?? 'auto';
  const home = options.home ?? (env.HOME || homedir());
  return {
    env,
    home,
    now: options.now ?? Date.now,
    qemuImg: options.qemuImg ?? 'qemu-img',
    mirrors: options.mirrors ?? [],
    trust: options.trust ?? NO_TRUST,
    maxImageBytes: options.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES,
    ...(options.credsFile ? { credsFile: options.credsFile } : {}),
    http:
      options.http ??
      createHttpClient({
        userAgent: USER_AGENT,
        connectTimeoutMs: options.connectTimeoutMs ?? 30_000,
        idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
        env,
        credentials: createCredentials({
          env,
          home,
          ...(options.credentials ? { configured: options.credentials } : {}),
          ...(options.token ? { token: options.token } : {}),
        }),
        ...(options.retries !== undefined ? { retries: options.retries } : {}),
        ...(options.retryDelayMs !== undefined ? { retryDelayMs: options.retryDelayMs } : {}),
      }),
    xzThreads: options.xzThreads ?? 0,
    inlineHashMaxBytes: options.inlineHashMaxBytes ?? 16 * 1024 * 1024,
    fifo: options.fifo ?? true,
    zstd: async () => (options.zstd === false ? undefined : (options.zstd ?? (await findExecutable('zstd', env.PATH)))),
    decoder: async () => {
      if (choice === 'lzma-native') return { kind: 'lzma-native' };
      const xz = await findExecutable('xz', env.PATH);
      if (xz) return { kind: 'xz', path: xz };
      return choice === 'auto' ? { kind: 'lzma-native' } : undefined;
    },
  };
}

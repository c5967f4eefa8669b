// Per-test workspace: a source dir served by nginx, a store, repository files, request counting, the CLI.
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { execa } from 'execa';
import { inject } from 'vitest';
import { createContext, loadRepositories, openStore, type ContextOptions } from '../../src/index.js';
import { TOOL_PATH } from './images.js';

export const CLI = resolve(import.meta.dirname, '../../bin/templates');

export interface Workspace {
  /** Source root, served at `baseurl`. */
  www: string;
  baseurl: string;
  store: string;
  dir: string;
  /** Writes a repository JSON file and returns its path. */
  writeRepo(name: string, repo: unknown, file?: string): Promise<string>;
  /** Requests nginx logged below this workspace's URL path (optionally only those whose URI ends with `suffix`). */
  requests(suffix?: string): Promise<string[]>;
  /** Every file and directory in the store (relative), sorted, but lago's lock files (see withoutLockFiles). */
  storeFiles(): Promise<string[]>;
  cleanup(): Promise<void>;
}

export async function workspace(): Promise<Workspace> {
  const nginx = inject('nginx');
  const www = await mkdtemp(join(nginx.root, 'ws-'));
  const dir = await mkdtemp(join(tmpdir(), 'templates-test-'));
  const store = join(dir, 'store');
  const prefix = `/${basename(www)}/`;
  return {
    www,
    baseurl: `http://127.0.0.1:${nginx.port}${prefix}`,
    store,
    dir,
    async writeRepo(name, repo, file = `${name}.json`) {
      const path = join(dir, 'repos', file);
      await mkdir(join(dir, 'repos'), { recursive: true });
      await writeFile(path, typeof repo === 'string' ? repo : JSON.stringify(repo));
      return path;
    },
    async requests(suffix = '') {
      const log = await readFile(nginx.accessLog, 'utf8').catch(() => '');
      return log.split('\n').filter((line) => {
        const uri = line.split(' ')[1] ?? '';
        return uri.includes(prefix) && uri.endsWith(suffix);
      });
    },
    async storeFiles() {
      const out: string[] = [];
      const walk = async (path: string, rel: string) => {
        for (const entry of await readdir(path, { withFileTypes: true }).catch(() => [])) {
          if (!rel && entry.isFile() && entry.name.endsWith('.lock')) continue;
          const relPath = rel ? `${rel}/${entry.name}` : entry.name;
          out.push(relPath);
          if (entry.isDirectory()) await walk(join(path, entry.name), relPath);
        }
      };
      await walk(store, '');
      return out.sort();
    },
    async cleanup() {
      await rm(www, { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Store file names without lago's lock files: `<entry>.lock` stays in the store once made (lago's protocol: it is never
 * removed), so what a test says about an entry's files leaves it out. test/store/lago-lock.test.ts checks the lock files.
 */
export const withoutLockFiles = (names: string[]) => names.filter((name) => !name.endsWith('.lock'));

/** The store's entry files (not hidden, not lock files), sorted. */
export const visibleEntries = async (store: string) =>
  withoutLockFiles(await readdir(store).catch(() => [] as string[]))
    .filter((n) => !n.startsWith('.'))
    .sort();

/** A lago repository with one http source (nginx) and one file source (the same directory on disk). */
export function lagoRepo(
  name: string,
  ws: Workspace,
  templates: Record<string, Record<string, Record<string, unknown>>>,
) {
  return {
    name,
    sources: {
      web: { type: 'http', args: { baseurl: ws.baseurl } },
      disk: { type: 'file', args: { root: ws.www } },
    },
    templates: Object.fromEntries(Object.entries(templates).map(([t, versions]) => [t, { versions }])),
  };
}

/** Library setup for a workspace: context, store and the given repository files. */
export async function librarySetup(ws: Workspace, repos: string[], options: ContextOptions = {}) {
  // Retries wait 20 ms, not seconds: the tests that exercise them stay quick.
  const context = createContext({ env: { PATH: TOOL_PATH, HOME: ws.dir }, retryDelayMs: 20, ...options });
  const store = await openStore({ root: ws.store, lockStaleMs: 2000 });
  const repositories = await loadRepositories({ context, store, repos });
  return { context, store, repositories };
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const result = await execa(process.execPath, [CLI, ...args], {
    reject: false,
    env: { PATH: TOOL_PATH, HOME: tmpdir(), TEMPLATES_LOCK_STALE_SECONDS: '2', ...env },
    extendEnv: false,
    stripFinalNewline: false,
    timeout: 60_000,
  });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

// The farm's cache host: `templates serve` on a small store of its own, killed and restarted, its disk filled, its RSS and files sampled.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CacheHostOptions {
  bin: string;
  /** Where the store's filesystem is mounted (a tmpfs of `sizeMiB` when the farm runs as root). */
  mount: string;
  sizeMiB: number;
  port: number;
  /** The upstream repository URL (through the upstream link). */
  repo: string;
  /** What neighbours use to reach it (through their link). */
  publicUrl: string;
  /** Settings for serve's own fetches (TEMPLATES_* variables). */
  env: Record<string, string>;
  /** serve's JSON log lines are appended here. */
  log: (line: string) => void;
}

export interface CacheHost {
  store: string;
  /** Whether the store is on a filesystem of its own (so it can be filled). */
  ownFilesystem: boolean;
  start(): Promise<void>;
  kill(): Promise<void>;
  /** SIGTERM, waits for the exit (bounded). */
  stop(): Promise<number | null>;
  /** Fills the store's filesystem but for `leaveBytes`; undo with `unfill`. */
  fill(leaveBytes: number): Promise<void>;
  unfill(): Promise<void>;
  /** Peak RSS (KiB) and open files seen by `sample`, over every process lifetime, and the store's filesystem's peak use. */
  peaks(): { rssKiB: number; files: number; storeBytes: number };
  sample(): Promise<void>;
  restarts: number;
  /** Stops serve and, unless `keep`, unmounts the store's tmpfs. */
  close(keep?: boolean): Promise<void>;
}

export async function startCacheHost(options: CacheHostOptions): Promise<CacheHost> {
  await mkdir(options.mount, { recursive: true });
  let ownFilesystem = false;
  if (process.getuid?.() === 0) {
    ownFilesystem = await run('mount', [
      '-t',
      'tmpfs',
      '-o',
      `size=${options.sizeMiB}m`,
      'farm-store',
      options.mount,
    ]).then(
      () => true,
      () => false,
    );
  }
  const store = join(options.mount, 'store');
  const ballast = join(options.mount, 'ballast');
  let child: ChildProcess | undefined;
  let peakRss = 0;
  let peakFiles = 0;
  let peakStore = 0;
  const host: CacheHost = {
    store,
    ownFilesystem,
    restarts: 0,
    async start() {
      const started = spawn(
        process.execPath,
        [
          options.bin,
          'serve',
          '--listen',
          `127.0.0.1:${options.port}`,
          '--store',
          store,
          '--repo',
          options.repo,
          '--public-url',
          options.publicUrl,
          '--anonymous',
          'write',
          '--sweep-interval',
          '5s',
          '--grace',
          '5s',
          '--warm',
          'none',
          '--min-free',
          '0',
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { PATH: process.env.PATH ?? '', HOME: options.mount, ...options.env },
        },
      );
      child = started;
      let buffered = '';
      started.stderr!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) options.log(line);
      });
      await new Promise<void>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error('farm: serve did not start in 30 s')), 30_000);
        started.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('listening on')) {
            clearTimeout(timer);
            resolve();
          }
        });
        started.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`farm: serve exited ${code} before listening`));
        });
      });
    },
    async kill() {
      const victim = child;
      if (!victim || victim.exitCode !== null) return;
      const exited = new Promise((resolve) => victim.once('exit', resolve));
      victim.kill('SIGKILL');
      await exited;
      host.restarts += 1;
    },
    async stop() {
      const victim = child;
      if (!victim || victim.exitCode !== null || victim.signalCode !== null) return victim?.exitCode ?? null;
      const exited = new Promise<number | null>((resolve) => victim.once('exit', (code) => resolve(code)));
      victim.kill('SIGTERM');
      const timer = setTimeout(() => victim.kill('SIGKILL'), 30_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async fill(leaveBytes) {
      // Piece by piece, as pulls write meanwhile: each piece a quarter of what is free, down to 1 MiB.
      await mkdir(ballast, { recursive: true });
      for (let i = 0; i < 200; i++) {
        const { bavail, bsize } = await statfs(options.mount);
        const free = bavail * bsize - leaveBytes;
        if (free < 1 << 20) return;
        const ok = await run('fallocate', [
          '-l',
          String(Math.max(1 << 20, Math.floor(free / 4))),
          join(ballast, String(i)),
        ]).then(
          () => true,
          () => false,
        );
        if (!ok) return;
      }
    },
    unfill: () => rm(ballast, { recursive: true, force: true }),
    peaks: () => ({ rssKiB: peakRss, files: peakFiles, storeBytes: peakStore }),
    async sample() {
      if (ownFilesystem) {
        const { blocks, bfree, bsize } = await statfs(options.mount);
        // Outside the disk-full window only: the ballast is not the store's.
        if (!(await readdir(ballast).catch(() => [])).length) peakStore = Math.max(peakStore, (blocks - bfree) * bsize);
      }
      const pid = child?.pid;
      if (!pid || child?.exitCode !== null) return;
      try {
        const status = await readFile(`/proc/${pid}/status`, 'utf8');
        const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
        const files = (await readdir(`/proc/${pid}/fd`)).length;
        peakRss = Math.max(peakRss, rss);
        peakFiles = Math.max(peakFiles, files);
      } catch {
        // it just exited
      }
    },
    async close(keep = false) {
      await host.stop();
      if (ownFilesystem && !keep) await run('umount', ['-l', options.mount]).catch(() => undefined);
    },
  };
  await host.start();
  return host;
}

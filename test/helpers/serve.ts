// Runs the real `templates serve` as a process: waits for its "listening on" line, keeps its JSON log lines, stops it.
import { execa, type ResultPromise } from 'execa';
import { TOOL_PATH } from './images.js';
import { CLI } from './env.js';

export interface Served {
  url: string;
  /** Every stderr line so far, parsed when it is JSON. */
  logs(): Array<Record<string, unknown>>;
  stderr(): string;
  /** Sends `signal` (default SIGTERM) and resolves to the exit code (bounded: SIGKILL after 60 s). */
  stop(signal?: NodeJS.Signals): Promise<number>;
  process: ResultPromise;
}

export async function startServe(args: string[], env: Record<string, string> = {}): Promise<Served> {
  const child = execa(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0', ...args], {
    env: { PATH: TOOL_PATH, HOME: env.HOME ?? '/tmp', TEMPLATES_LOCK_STALE_SECONDS: '2', ...env },
    extendEnv: false,
    reject: false,
    buffer: false,
    // stop() has its own 60 s SIGKILL: execa's 5 s one cut graceful shutdowns short on a loaded machine.
    forceKillAfterDelay: false,
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start in 20 s: ${stderr}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (https?:\/\/\S+)\n/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void child.then((result) => reject(new Error(`serve exited ${result.exitCode}: ${stderr}`)));
  });
  return {
    url,
    process: child,
    stderr: () => stderr,
    logs: () =>
      stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const result = await child;
      clearTimeout(killer);
      return result.exitCode ?? -1;
    },
  };
}

// A real nginx on 127.0.0.1 for tests and the benchmark: free ports, start with a given config, stop.
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function findNginx(): Promise<string> {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) {
    const candidate = join(dir, 'nginx');
    try {
      await execa(candidate, ['-v']);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error('nginx not found: run scripts/setup.sh (apt-get install nginx-light)');
}

/** A whole nginx.conf for a server run from `prefix` (pid, logs, temp dirs there), with `http` inside its http block. */
export function nginxConf(prefix: string, http: string): string {
  const user = process.getuid?.() === 0 ? 'user root;' : '';
  return `${user}
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
daemon off;
events { worker_connections 256; }
http {
  default_type application/octet-stream;
  client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;
  sendfile on;
${http}
}
`;
}

export interface RunningNginx {
  stop(): Promise<void>;
}

/** Writes `conf` (from nginxConf) and starts nginx; resolves once `port` answers. */
export async function startNginx(prefix: string, conf: string, port: number): Promise<RunningNginx> {
  const confPath = join(prefix, 'nginx.conf');
  await writeFile(confPath, conf);
  const nginx = execa(await findNginx(), ['-p', prefix, '-c', confPath], { stdio: 'ignore', reject: false });
  // Wait (bounded) until it answers.
  let up = false;
  for (let i = 0; i < 100 && !up; i++) {
    await sleep(50);
    up = await fetch(`http://127.0.0.1:${port}/`).then(
      () => true,
      () => false,
    );
  }
  if (!up) {
    nginx.kill('SIGKILL');
    const log = await readFile(join(prefix, 'error.log'), 'utf8').catch(() => '');
    throw new Error(`nginx did not start: ${log}`);
  }
  return {
    async stop() {
      nginx.kill('SIGQUIT');
      await Promise.race([nginx, sleep(5000)]);
      nginx.kill('SIGKILL');
    },
  };
}

// Vitest global setup: a real nginx on 127.0.0.1 (free ports) serving a temp dir, plus a forward-proxy server.
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { freePort, nginxConf, startNginx } from './nginx.js';

export interface NginxInfo {
  /** Directory nginx serves at http://127.0.0.1:port/ */
  root: string;
  port: number;
  proxyPort: number;
  accessLog: string;
  proxyLog: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    nginx: NginxInfo;
  }
}

function config(prefix: string, info: NginxInfo): string {
  return nginxConf(
    prefix,
    `  types { application/json json; text/html html; }
  log_format counted '$request_method $uri $status $body_bytes_sent "$http_user_agent" "$http_range"';
  server {
    listen 127.0.0.1:${info.port};
    root ${info.root};
    access_log ${info.accessLog} counted;
    # Fault injection for error paths only: 500 for any .xz under /fail500/, the rest served as usual.
    location ~ ^/fail500/.*\\.xz$ { return 500; }
    location /fail500/ { rewrite ^/fail500/(.*)$ /$1 last; }
    # Slow downloads (to kill a fetch half-way).
    location /slow/ { limit_rate 2m; rewrite ^/slow/(.*)$ /$1 break; }
    # A captive portal: HTML with 200 for everything.
    location /portal/ { default_type text/html; return 200 "<!DOCTYPE html><html><body>log in</body></html>"; }
    # Redirects to another scheme.
    location /to-file/ { return 302 file:///etc/passwd; }
  }
  server {
    listen 127.0.0.1:${info.proxyPort};
    access_log ${info.proxyLog} counted;
    location / { proxy_pass http://127.0.0.1:${info.port}; proxy_set_header Host $host; }
  }`,
  );
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const prefix = await mkdtemp(join(tmpdir(), 'templates-nginx-'));
  const info: NginxInfo = {
    root: join(prefix, 'www'),
    port: await freePort(),
    proxyPort: await freePort(),
    accessLog: join(prefix, 'access.log'),
    proxyLog: join(prefix, 'proxy.log'),
  };
  await mkdir(info.root);
  const nginx = await startNginx(prefix, config(prefix, info), info.port);
  project.provide('nginx', info);
  return async () => {
    await nginx.stop();
    await rm(prefix, { recursive: true, force: true });
  };
}

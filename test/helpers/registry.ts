// A real OCI registry for tests: Debian's docker-registry (distribution 2.8) as a plain process on 127.0.0.1, optionally with htpasswd.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';

export interface RunningRegistry {
  /** `127.0.0.1:PORT`. */
  host: string;
  /** Where it keeps blobs and manifests (to damage them on purpose). */
  root: string;
  /** Its request log lines so far: `METHOD PATH STATUS`. */
  requests(): string[];
  stop(): Promise<void>;
}

/** Starts `docker-registry serve` with storage in `dir`; `htpasswd` (a file from htpasswd -B) turns on Basic auth. */
export async function startRegistry(
  dir: string,
  options: {
    htpasswd?: string;
    token?: { realm: string; service: string; issuer: string; rootcertbundle: string };
  } = {},
): Promise<RunningRegistry> {
  const root = join(dir, 'data');
  await mkdir(root, { recursive: true });
  const token = options.token;
  const auth = options.htpasswd
    ? `auth:\n  htpasswd:\n    realm: test-registry\n    path: ${options.htpasswd}\n`
    : token
      ? `auth:\n  token:\n    realm: ${token.realm}\n    service: ${token.service}\n    issuer: ${token.issuer}\n    rootcertbundle: ${token.rootcertbundle}\n`
      : '';
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: info\n  formatter: json\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n  secret: test-secret\n${auth}`,
  );
  const child: ResultPromise = execa('docker-registry', ['serve', config], {
    env: { REGISTRY_HTTP_ADDR: '127.0.0.1:0' },
    reject: false,
    buffer: false,
    stdin: 'ignore',
  });
  const lines: string[] = [];
  let pending = '';
  const host = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`docker-registry did not start: ${lines.join('\n')}`)), 15_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const parts = pending.split('\n');
      pending = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        const listening = /listening on (127\.0\.0\.1:\d+)/.exec(line);
        if (listening) {
          clearTimeout(timer);
          resolve(listening[1]!);
        }
      }
    });
    void child.then(() => reject(new Error(`docker-registry exited: ${lines.join('\n')}`)));
  });
  return {
    host,
    root,
    requests: () =>
      lines.flatMap((line) => {
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          const method = entry['http.request.method'];
          const uri = entry['http.request.uri'];
          const status = entry['http.response.status'];
          return typeof method === 'string' && typeof uri === 'string' && status !== undefined
            ? [`${method} ${uri} ${String(status)}`]
            : [];
        } catch {
          return [];
        }
      }),
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([child, new Promise((resolve) => setTimeout(resolve, 5000))]);
      child.kill('SIGKILL');
    },
  };
}

// The farm's upstream: one nginx serving the published repository as a primary and as a mirror, with switchable faults.
import { copyFile, link, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nginxConf, type RunningNginx, startNginx } from '../test/helpers/nginx.js';

export interface Upstream {
  primaryPort: number;
  mirrorPort: number;
  /** The primary answers every request with 500 while on. */
  fail500(on: boolean): Promise<void>;
  /** The mirror serves `file` (relative to the published directory) with flipped bytes while on. */
  corrupt(file: string, on: boolean): Promise<void>;
  /** Whole-image downloads (.xz, .zst or raw, any status that sent bytes) per version (`tpl/version`), from both servers' logs. */
  downloads(): Promise<Map<string, number>>;
  stop(): Promise<void>;
}

/** Hard links `from` into `to`, file by file (the mirror: the same files below another root). */
async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    if (entry.isDirectory()) await linkTree(source, target);
    else await link(source, target);
  }
}

/** A version's whole-image download, as nginx logged it: GET tpl/ver/disk.raw(.xz|.zst), 200 or 206, some bytes sent. */
export function downloadOf(line: string): string | undefined {
  const [method, uri, status, sent] = line.split(' ');
  if (method !== 'GET' || !uri || !(status === '200' || status === '206') || Number(sent) <= 0) return undefined;
  const match = /^\/([^/]+\/[^/]+)\/disk\.raw(\.xz|\.zst)?$/.exec(uri);
  return match?.[1];
}

export async function startUpstream(
  work: string,
  published: string,
  primaryPort: number,
  mirrorPort: number,
): Promise<Upstream> {
  const prefix = join(work, 'upstream');
  const mirrorRoot = join(work, 'mirror');
  await rm(mirrorRoot, { recursive: true, force: true });
  await mkdir(prefix, { recursive: true });
  await linkTree(published, mirrorRoot);
  const flag = join(prefix, 'fail-500');
  const nginx: RunningNginx = await startNginx(
    prefix,
    nginxConf(
      prefix,
      `  log_format sent '$request_method $uri $status $body_bytes_sent';
  keepalive_requests 100000;
  server { listen 127.0.0.1:${primaryPort}; root ${published}; access_log ${prefix}/primary.log sent;
    location / { if (-f ${flag}) { return 500; } } }
  server { listen 127.0.0.1:${mirrorPort}; root ${mirrorRoot}; access_log ${prefix}/mirror.log sent; }`,
    ),
    primaryPort,
  );
  return {
    primaryPort,
    mirrorPort,
    async fail500(on) {
      if (on) await writeFile(flag, '');
      else await rm(flag, { force: true });
    },
    async corrupt(file, on) {
      const target = join(mirrorRoot, file);
      const part = `${target}.farm-part`;
      if (on) {
        // A copy with one byte in every MiB flipped, put in place by rename: the primary's file is untouched.
        await copyFile(join(published, file), part);
        const bytes = await readFile(part);
        for (let at = 4096; at < bytes.length; at += 1 << 20) bytes[at] = (bytes[at] ?? 0) ^ 0xff;
        await writeFile(part, bytes);
        await rename(part, target);
      } else {
        await rm(part, { force: true });
        await rm(target, { force: true });
        await link(join(published, file), target);
      }
    },
    async downloads() {
      const counts = new Map<string, number>();
      for (const log of ['primary.log', 'mirror.log']) {
        const text = await readFile(join(prefix, log), 'utf8').catch(() => '');
        for (const line of text.split('\n')) {
          const version = downloadOf(line);
          if (version) counts.set(version, (counts.get(version) ?? 0) + 1);
        }
      }
      return counts;
    },
    stop: () => nginx.stop(),
  };
}

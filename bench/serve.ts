// The serve cases of the benchmark: downloads from templates serve against nginx serving the same file, its memory, pull-through.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Records a result's time and CPU under `name`. */
export function recordResult(
  ctx: { record: (name: string, seconds: number, extra?: { cpu?: number }) => void },
  name: string,
  result: { seconds: number; cpu: number },
): void {
  ctx.record(name, result.seconds, { cpu: result.cpu });
}

export interface ServeBenchContext {
  bin: string;
  work: string;
  /** The bench repository (nginx upstream) and nginx's URL for a path below its root. */
  repo: string;
  url: (path: string) => string;
  run: (command: string, args: string[], env?: Record<string, string>) => Promise<{ seconds: number; cpu: number }>;
  shell: (script: string) => Promise<{ seconds: number; cpu: number }>;
  record: (name: string, seconds: number, extra?: { cpu?: number }) => void;
}

export interface ServeFacts {
  /** The server's peak RSS (VmHWM) after the 8-client downloads, MiB. */
  rssMiB: number;
  /** Bytes of the file downloaded in the one-client cases. */
  bytes: number;
  /** Milliseconds of a usage API GET embedding 1,000 entries: the first (cold) and the next (warm). */
  embedColdMs: number;
  embedWarmMs: number;
  /** CPU seconds the cache host spent on the pull (itself and its xz), and the neighbour's fetch took in all. */
  pullCpuSeconds: number;
}

/** utime + stime of a process and its waited-for children (its xz), in seconds. */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /, '').split(' ');
  // After "(comm) ": state is field 3, utime 14 … cstime 17 (1-based), so indexes 11 to 14 here.
  return fields.slice(11, 15).reduce((sum, ticks) => sum + Number(ticks), 0) / 100;
}

async function startServer(bin: string, args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [bin, 'serve', '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      out += text;
      const match = /listening on (\S+)\n/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('close', (code) => reject(new Error(`templates serve exited ${code}`)));
  });
  return { url, child };
}

async function stop(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once('close', resolve)));
}

/** A store of 1,000 small entries with records, as the usage API reads them (no image bytes are read). */
async function thousandEntries(store: string): Promise<void> {
  await mkdir(join(store, '.tmp'), { recursive: true });
  for (let i = 0; i < 1000; i++) {
    const name = `r${i % 10}:t${Math.floor(i / 10) % 10}:v${i}`;
    const record = {
      schema: 1,
      ref: name,
      source: `http://upstream/${name}`,
      sourceFormat: 'raw',
      compressed: true,
      verified: { digest: `sha1:${'0'.repeat(40)}`, of: 'image' },
      stored: { digest: `sha1:${'0'.repeat(40)}` },
      size: 4096,
      fetchedAt: new Date().toISOString(),
      tool: 'bench',
    };
    await writeFile(join(store, name), Buffer.alloc(4096, 1));
    await writeFile(join(store, `${name}.hash`), '0'.repeat(40));
    await writeFile(join(store, `${name}.metadata`), '{}');
    await writeFile(join(store, `${name}.record.json`), JSON.stringify(record));
  }
}

/**
 * One round of the serve cases: the cache host's store is filled by a neighbour's pull-through fetch (timed against
 * a direct fetch from upstream), then its kept .xz is downloaded by 1 and 8 clients from the server and from nginx.
 */
export async function serveRound(ctx: ServeBenchContext, round: number): Promise<ServeFacts> {
  const cacheStore = join(ctx.work, `serve-cache-${round}`);
  const server = await startServer(ctx.bin, ['--store', cacheStore, '--repo', ctx.repo]);
  try {
    const direct = join(ctx.work, `serve-direct-${round}`);
    const neighbour = join(ctx.work, `serve-neighbour-${round}`);
    const cpuBefore = await cpuSeconds(server.child.pid);
    await ctx.shell('sync');
    recordResult(
      ctx,
      'fetch from upstream directly (multi-block xz, compressed_hash)',
      await ctx.run(process.execPath, [ctx.bin, 'fetch', '-q', '--repo', ctx.repo, '--store', direct, 'bench:fast']),
    );
    await rm(direct, { recursive: true, force: true });
    await ctx.shell('sync');
    recordResult(
      ctx,
      'neighbour fetch through serve, pull-through (cold cache)',
      await ctx.run(process.execPath, [
        ctx.bin,
        'fetch',
        '-q',
        '--repo',
        `${server.url}/repos/bench.json`,
        '--store',
        neighbour,
        'bench:fast',
      ]),
    );
    await rm(neighbour, { recursive: true, force: true });
    // The neighbour is done once the .xz matched its digest; the cache host may still be decoding its own copy.
    const kept = join(cacheStore, 'bench:fast:v1.xz');
    for (
      let i = 0;
      i < 1200 &&
      !(await stat(kept).then(
        () => true,
        () => false,
      ));
      i++
    )
      await sleep(100);
    await sleep(500);
    const pullCpuSeconds = (await cpuSeconds(server.child.pid)) - cpuBefore;

    // The same bytes from both servers: the .xz nginx serves, and the copy the cache kept.
    const fromServer = `${server.url}/repos/bench/fast/v1/image.xz`;
    const fromNginx = ctx.url('multi/disk.xz');
    const curl = (url: string) => `curl -s -o /dev/null ${url}`;
    // Each after a sync: the cache host's freshly written image must not be flushed to disk during a measurement.
    const timed = async (name: string, script: string) => {
      await ctx.shell('sync');
      recordResult(ctx, name, await ctx.shell(script));
    };
    const eight = (url: string) => `${Array.from({ length: 8 }, () => `${curl(url)} &`).join(' ')} wait`;
    for (let i = 0; i < 3; i++) {
      await timed('1 client from nginx', curl(fromNginx));
      await timed('1 client from serve', curl(fromServer));
    }
    await timed('8 clients from nginx', eight(fromNginx));
    await timed('8 clients from serve', eight(fromServer));
    const status = await readFile(`/proc/${server.child.pid}/status`, 'utf8');
    const rssMiB = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
    const { size: bytes } = await stat(join(cacheStore, 'bench:fast:v1.xz'));
    return {
      rssMiB,
      bytes,
      pullCpuSeconds,
      ...(round === 1 ? await embedTimes(ctx) : { embedColdMs: NaN, embedWarmMs: NaN }),
    };
  } finally {
    await stop(server.child);
    await rm(cacheStore, { recursive: true, force: true });
  }
}

async function embedTimes(ctx: ServeBenchContext): Promise<{ embedColdMs: number; embedWarmMs: number }> {
  const store = join(ctx.work, 'serve-thousand');
  await thousandEntries(store);
  const server = await startServer(ctx.bin, ['--store', store]);
  try {
    const time = async () => {
      const started = process.hrtime.bigint();
      const body = (await (await fetch(`${server.url}/api/1/repositories?embed=true`)).json()) as {
        _embedded?: { items: unknown[] };
      };
      if (body._embedded?.items.length !== 10) throw new Error('usage API: expected 10 repositories');
      return Number(process.hrtime.bigint() - started) / 1e6;
    };
    return { embedColdMs: await time(), embedWarmMs: await time() };
  } finally {
    await stop(server.child);
    await rm(store, { recursive: true, force: true });
  }
}

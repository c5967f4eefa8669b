// The delta cases of the benchmark: a version pair fetched as a delta, against the whole .zst and casync extract --seed.
import { execFile } from 'node:child_process';
import { link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, nginxConf, startNginx } from '../test/helpers/nginx.js';

export interface DeltaBenchContext {
  bin: string;
  work: string;
  /** bench/.cache: images.sh put the pair in delta/. */
  cache: string;
  /** The RSS probe (rss-probe.js) loaded into the measured fetch. */
  probe: string;
  run: (command: string, args: string[], env?: Record<string, string>) => Promise<{ seconds: number; cpu: number }>;
  shell: (script: string) => Promise<{ seconds: number; cpu: number }>;
  record: (name: string, seconds: number, extra?: { cpu?: number; rssKiB?: number }) => void;
}

export interface DeltaFacts {
  /** Bytes on the wire (response bodies nginx sent) for one update of v1 to v2. */
  ours: number;
  casync: number;
  /** casync extract at casync's default sizes (16K:64K:256K), its own store. */
  casyncDefault?: number;
  /** The whole `.zst` of v2, and of v1 and v2 together, and the chunk store holding both. */
  zst: number;
  twoZst: number;
  chunkStore: number;
  rssMiB: number;
  /** Bytes on the wire of the whole fetch. */
  whole: number;
}

export const DELTA = 'fetch v2 as a delta (v1 stored), loopback';
export const DELTA_WHOLE = 'fetch v2 whole (.zst), loopback';
export const DELTA_CASYNC = 'casync extract --seed=v1 over HTTP; sync';
export const DELTA_SLOW = 'fetch v2 as a delta, server at 100 Mbit/s';
export const DELTA_WHOLE_SLOW = 'fetch v2 whole (.zst), server at 100 Mbit/s';
export const INDEX_CHUNKS = 'templates index: chunk v1 and v2 into one store';
export const CASYNC_MAKE = 'casync make of v1 and v2 into one store';
/** The whole fetch's own baselines on this image (1 GiB ext4, ~470 MiB of data), loopback. */
export const DELTA_ZST_BASE = 'curl v2.zst | zstd -d --sparse; sync (1 GiB ext4)';
export const DELTA_XZ_FLOOR = 'curl v2.xz | xz -T0 -dc (1 GiB ext4, multi-block)';

/** 100 Mbit/s in bytes per second, nginx's limit_rate. */
const RATE = 12_500_000;

/** Sum of response bytes nginx logged after `from` bytes of its access log. */
async function sentSince(log: string, from: number): Promise<number> {
  const text = (await readFile(log)).subarray(from).toString('utf8');
  return text
    .split('\n')
    .map((line) => Number(line.split(' ')[3] ?? 0))
    .reduce((sum, bytes) => sum + (Number.isFinite(bytes) ? bytes : 0), 0);
}

const sizeOf = async (path: string) => (await stat(path)).size;

/** Bytes a directory's files take (du -sb). */
async function du(path: string): Promise<number> {
  const { stdout } = await promisify(execFile)('du', ['-sb', path]);
  return Number(stdout.split('\t')[0]);
}

export async function startDeltaBench(ctx: DeltaBenchContext) {
  const { bin, work, cache, run, shell, record } = ctx;
  const dir = join(cache, 'delta');
  const pub = join(dir, 'pub');
  const prefix = join(work, 'delta-nginx');
  const log = join(prefix, 'access.log');
  await mkdir(prefix, { recursive: true });
  for (const version of ['v1', 'v2']) {
    await mkdir(join(pub, 'tpl', version), { recursive: true });
    await link(join(dir, `${version}.raw`), join(pub, 'tpl', version, 'disk.raw')).catch(
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      },
    );
  }
  const port = await freePort();
  const nginx = await startNginx(
    prefix,
    nginxConf(
      prefix,
      `  log_format sent '$request_method $uri $status $body_bytes_sent';
  server { listen 127.0.0.1:${port}; root ${pub}; access_log ${log} sent; keepalive_requests 100000;
    location /slow/ { alias ${pub}/; limit_rate ${RATE}; }
    location /cd/ { alias ${dir}/casync-default/; } }`,
    ),
    port,
  );
  const url = `http://127.0.0.1:${port}`;
  const index = (extra: string[]) =>
    run(process.execPath, [bin, 'index', pub, '--name', 'bench', '--base-url', `${url}/`, '-q', ...extra]);
  // The .xz and .zst once (kept in bench/.cache across runs: index is incremental), then the chunks.
  await index([]);
  const repo = join(pub, 'bench.json');
  const slowRepo = join(work, 'bench-slow.json');
  await writeFile(slowRepo, (await readFile(repo, 'utf8')).replaceAll(`${url}/`, `${url}/slow/`));
  // casync at its default sizes, for the bytes it moves (its own store, made once).
  if (!(await stat(join(dir, 'casync-default', 'v2.caibx')).catch(() => undefined))) {
    await mkdir(join(dir, 'casync-default'), { recursive: true });
    await run('casync', [
      'make',
      `--store=${join(dir, 'casync-default', 'default.castr')}`,
      join(dir, 'casync-default', 'v2.caibx'),
      join(dir, 'v2.raw'),
    ]);
  }
  // A host holding v1, its own index made (as a fetch makes it the first time v1 seeds one).
  const seedStore = join(work, 'delta-seed');
  await rm(seedStore, { recursive: true, force: true });
  await run(process.execPath, [bin, 'fetch', '-q', '--repo', repo, '--store', seedStore, 'bench:tpl:v1']);
  await run(process.execPath, [bin, 'resolve', '--repo', repo, '--store', seedStore, 'bench:tpl:v2']);
  const seedImage = join(seedStore, 'bench:tpl:v1');
  const store = join(work, 'delta-store');
  const out = join(work, 'delta-out.raw');
  const fresh = async (seeded: boolean) => {
    await rm(store, { recursive: true, force: true });
    if (seeded) await shell(`cp -a --sparse=always ${seedStore} ${store}`);
    await shell('sync');
  };
  const fetchV2 = async (name: string, from: string, probe = false) => {
    const rssFile = join(work, 'delta-rss');
    await rm(rssFile, { force: true });
    const at = await sizeOf(log);
    const args = [bin, 'fetch', '-q', '--repo', from, '--store', store, 'bench:tpl:v2'];
    const result = await run(process.execPath, probe ? ['--import', ctx.probe, ...args] : args, {
      BENCH_RSS_FILE: rssFile,
    });
    const rssKiB = probe ? Number((await readFile(rssFile, 'utf8')).trim().split('\n').pop()) : undefined;
    record(name, result.seconds, { cpu: result.cpu, ...(rssKiB !== undefined ? { rssKiB } : {}) });
    return { bytes: await sentSince(log, at), rssKiB: rssKiB ?? 0 };
  };
  const casync = async (store: string, indexUrl: string, name?: string) => {
    await rm(out, { force: true });
    await shell('sync');
    const at = await sizeOf(log);
    const result = await shell(
      `casync extract --seed=${seedImage} --store=${store} ${indexUrl} ${out} 2>/dev/null && sync ${out}`,
    );
    if (name) record(name, result.seconds, { cpu: result.cpu });
    return sentSince(log, at);
  };

  return {
    async round(round: number): Promise<DeltaFacts> {
      // The whole fetch's floors on this image: what curl and the decoder alone take.
      const base = async (name: string, script: string) => {
        await rm(out, { force: true });
        await shell('sync');
        const result = await shell(script);
        record(name, result.seconds, { cpu: result.cpu });
      };
      await base(DELTA_ZST_BASE, `curl -s ${url}/tpl/v2/disk.raw.zst | zstd -d --sparse -c -q > ${out}; sync ${out}`);
      await base(DELTA_XZ_FLOOR, `curl -s ${url}/tpl/v2/disk.raw.xz | xz -T0 -dc > ${out}`);
      await rm(out, { force: true });
      await fresh(false);
      const whole = await fetchV2(DELTA_WHOLE, repo);
      await fresh(true);
      const delta = await fetchV2(DELTA, repo, true);
      const casyncBytes = await casync(`${url}/default.castr`, `${url}/tpl/v2/disk.raw.caibx`, DELTA_CASYNC);
      const casyncDefault = round === 1 ? await casync(`${url}/cd/default.castr`, `${url}/cd/v2.caibx`) : undefined;
      await fresh(false);
      await fetchV2(DELTA_WHOLE_SLOW, slowRepo);
      await fresh(true);
      await fetchV2(DELTA_SLOW, slowRepo);
      // Chunking: templates index's chunk pass (the .xz and .zst unchanged) against casync make of both images.
      await index(['--no-chunks']);
      await rm(join(pub, 'default.castr'), { recursive: true, force: true });
      await shell('sync');
      const chunked = await index([]);
      record(INDEX_CHUNKS, chunked.seconds, { cpu: chunked.cpu });
      const castr = join(work, 'casync-make.castr');
      await rm(castr, { recursive: true, force: true });
      const made = await shell(
        `${['v1', 'v2']
          .map(
            (v) =>
              `casync make --chunk-size=8K:32K:128K --store=${castr} ${join(work, `${v}.caibx`)} ${join(dir, `${v}.raw`)}`,
          )
          .join(' && ')} && sync -f ${castr}`,
      );
      record(CASYNC_MAKE, made.seconds, { cpu: made.cpu });
      const zst = await sizeOf(join(pub, 'tpl', 'v2', 'disk.raw.zst'));
      return {
        ours: delta.bytes,
        casync: casyncBytes,
        ...(casyncDefault !== undefined ? { casyncDefault } : {}),
        zst,
        twoZst: zst + (await sizeOf(join(pub, 'tpl', 'v1', 'disk.raw.zst'))),
        chunkStore: await du(join(pub, 'default.castr')),
        rssMiB: delta.rssKiB / 1024,
        whole: whole.bytes,
      };
    },
    close: () => nginx.stop(),
  };
}

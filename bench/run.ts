// The benchmark: times `templates fetch` against baselines run in the same process, interleaved, and checks the targets.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort, nginxConf, startNginx } from '../test/helpers/nginx.js';
import {
  CASYNC_MAKE,
  DELTA,
  DELTA_CASYNC,
  DELTA_SLOW,
  DELTA_WHOLE,
  DELTA_WHOLE_SLOW,
  DELTA_XZ_FLOOR,
  DELTA_ZST_BASE,
  type DeltaFacts,
  INDEX_CHUNKS,
  startDeltaBench,
} from './delta.js';
import { startOciBench, type OciFacts } from './oci.js';
import { serveRound, type ServeFacts } from './serve.js';

const here = dirname(fileURLToPath(import.meta.url));
const project = resolve(here, '../../..'); // bench/.build/bench/run.js
const cache = join(project, 'bench', '.cache');
const work = join(cache, 'run');
const www = join(cache, 'www');
const bin = join(project, 'bin', 'templates');
const probe = join(here, 'rss-probe.js');
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
/** BENCH_ONLY=fetch, serve, oci or delta: only those cases (the full run takes a while). */
const ONLY = process.env.BENCH_ONLY;
const runs = (part: 'fetch' | 'serve' | 'oci' | 'delta') => !ONLY || ONLY === part;
const MiB = 1024 * 1024;
/** Small templates for `fetch A B C …` (bench/images.sh builds them). */
const SMALL = 10;
/** Whether this CPU hashes SHA-1/SHA-256 in hardware: the synced-floor targets apply only then. */
const SHA_NI = readFileSync('/proc/cpuinfo', 'utf8').includes(' sha_ni');

// Case and baseline names, as the table prints them.
const FLOOR = 'curl | xz -T0 -dc (multi-block)';
const SYNCED_FLOOR = 'curl | xz -T0 -dc; sync (the synced plain floor)';
const SAME_SHA256 = 'same work: curl | tee(sha256sum) | xz -T0 -dc; sync';
const SAME_SHA1 = 'same work: curl | xz -T0 -dc | tee(sha1sum) | dd conv=sparse; sync';
const SAME_RAW = 'same work: curl | tee(sha1sum) | dd conv=sparse; sync (raw)';
const SAME_ZST = 'curl URL.zst | zstd -d --sparse; sync';
const SEQUENTIAL = 'sequential: curl; xz -d; sha1sum; qemu-img convert';
const CURL_RAW = 'curl -o (uncompressed raw)';
const QCOW_BASE = 'curl | xz -T0 -dc; qemu-img convert (qcow2)';
const SAME_QCOW = 'same work: curl | tee(sha256sum) | xz -T0 -dc; qemu-img convert; sha256sum; sync (qcow2)';
const SINGLE_BASE = 'curl | xz -T0 -dc (single-block)';
const FAST = 'fetch, multi-block xz, compressed_hash';
const LAGO = 'fetch, multi-block xz, lago (raw SHA-1 only)';
const RAW = 'fetch, uncompressed raw';
const ZST = 'fetch, .zst listed (zstd -19 --long=27)';
const QCOW = 'fetch, qcow2 (xz)';
const SINGLE = 'fetch, single-block xz, compressed_hash';
const NODE = 'node -e 0';
const HIT = 'fetch, cache hit';
const HIT_5000 = 'fetch, cache hit, repository of 5,000 versions';
const SMALL_ALL = `fetch of ${SMALL} small templates in one command`;
const SMALL_ONE = 'fetch of the largest small template alone';
const SMALL_SHELL_ALL = `the same work in bash for the ${SMALL}, 3 at once: curl | tee(sha256sum) | xz -dc; sha256sum; sync`;
const SMALL_SHELL_ONE = 'the same work in bash for the largest alone';
const CROWD = '8 processes, one template';
const BIG = 'fetch, 8 GiB apparent size, lago';
const INDEX_BASE = 'xz -T0 --block-size=16MiB -6 of the image; sync';
const INDEX_XZ = 'templates index --formats xz';
const INDEX_BOTH = 'templates index (xz and zst -19, the default)';

interface Result {
  seconds: number;
  /** User + system CPU seconds of everything the command ran (bash's `times` for its children). */
  cpu: number;
  stdout: string;
  stderr: string;
}

/** `times`' second line ("0m1.250s 0m0.310s"): the children's user and system time. */
function childCpu(text: string): number {
  const line = text.trim().split('\n')[1] ?? '';
  return [...line.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, [, m, sec]) => sum + Number(m) * 60 + Number(sec), 0);
}

/** Runs a bash script to completion, timing it and its CPU; rejects with its stderr when it fails. */
function timed(script: string, args: string[], env: Record<string, string>): Promise<Result> {
  const started = process.hrtime.bigint();
  return new Promise((resolvePromise, reject) => {
    // bash reports its children's CPU time on descriptor 3 once the command ended.
    const child = spawn('bash', ['-o', 'pipefail', '-c', `${script}\ns=$?; times >&3; exit $s`, 'bench', ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    let times = '';
    child.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (text: string) => (times += text));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code === 0) resolvePromise({ seconds, cpu: childCpu(times), stdout, stderr });
      else reject(new Error(`${script} ${args.join(' ')} failed (${signal ?? code}): ${stderr.trim()}`));
    });
  });
}

/** Runs a command (through bash, for its CPU time). */
const run = (command: string, args: string[], env: Record<string, string> = {}) =>
  timed('"$@"', [command, ...args], env);
const shell = (script: string) => timed(script, [], {});

async function digestFile(path: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

interface Digests {
  rawSha1: string;
  multiSha256: string;
  singleSha256: string;
  qcowSha256: string;
  bigSha1: string;
  zstSha256: string;
}

/** Digests of the cached images, computed once and cached beside them. */
async function digests(): Promise<Digests> {
  const file = join(cache, 'digests.json');
  const known = await readFile(file, 'utf8').then(
    (text) => JSON.parse(text) as Digests,
    () => undefined,
  );
  if (known?.zstSha256) return known;
  console.error('bench: hashing the images (once)');
  const big = await new Promise<string>((resolvePromise, reject) => {
    const hash = createHash('sha1');
    const xz = spawn('xz', ['-T0', '-dc', join(cache, 'big.raw.xz')], { stdio: ['ignore', 'pipe', 'inherit'] });
    xz.stdout.on('data', (chunk: Buffer) => hash.update(chunk));
    xz.once('close', (code) => (code === 0 ? resolvePromise(hash.digest('hex')) : reject(new Error('xz failed'))));
  });
  const result: Digests = {
    rawSha1: await digestFile(join(cache, 'disk.raw'), 'sha1'),
    multiSha256: await digestFile(join(cache, 'disk.raw.xz'), 'sha256'),
    singleSha256: await digestFile(join(cache, 'disk.raw.single.xz'), 'sha256'),
    qcowSha256: await digestFile(join(cache, 'disk.qcow2.xz'), 'sha256'),
    bigSha1: big,
    zstSha256: await digestFile(join(cache, 'disk.raw.zst'), 'sha256'),
  };
  await writeFile(file, JSON.stringify(result));
  return result;
}

/** The served tree (symlinks to the cached images) and a lago-format repository naming one template per case. */
async function serveTree(d: Digests, port: number): Promise<string> {
  await rm(www, { recursive: true, force: true });
  const files: Array<[string, string, string | undefined]> = [
    ['multi/disk.xz', 'disk.raw.xz', d.rawSha1],
    ['single/disk.xz', 'disk.raw.single.xz', d.rawSha1],
    ['raw/disk', 'disk.raw', d.rawSha1],
    ['qcow/disk.xz', 'disk.qcow2.xz', undefined],
    ['big/disk.xz', 'big.raw.xz', d.bigSha1],
    ['multi/disk.zst', 'disk.raw.zst', undefined],
    ...Array.from({ length: SMALL }, (_, i): [string, string, string | undefined] => [
      `small/${i}.xz`,
      `small/${i}.raw.xz`,
      undefined,
    ]),
  ];
  for (const [path, target, sha1] of files) {
    await mkdir(dirname(join(www, path)), { recursive: true });
    await symlink(join(cache, target), join(www, path));
    if (sha1) await writeFile(join(www, `${path}.hash`), sha1);
  }
  const version = (handle: string, extra: Record<string, string | number> = {}) => ({
    versions: { v1: { source: 'web', handle, timestamp: 1, ...extra } },
  });
  const repo = {
    name: 'bench',
    sources: { web: { type: 'http', args: { baseurl: `http://127.0.0.1:${port}/` } } },
    templates: {
      fast: version('multi/disk', { compressed_hash: `sha256:${d.multiSha256}` }),
      lago: version('multi/disk'),
      raw: version('raw/disk'),
      qcow: version('qcow/disk', { compressed_hash: `sha256:${d.qcowSha256}` }),
      single: version('single/disk', { compressed_hash: `sha256:${d.singleSha256}` }),
      big: version('big/disk'),
      zst: version('multi/disk', {
        compressed_hash: `sha256:${d.multiSha256}`,
        zst_hash: `sha256:${d.zstSha256}`,
        zst_size: (await stat(join(cache, 'disk.raw.zst'))).size,
      }),
      ...Object.fromEntries(
        await Promise.all(
          Array.from({ length: SMALL }, async (_, i) => [
            `small${i}`,
            version(`small/${i}`, {
              compressed_hash: `sha256:${await digestFile(join(cache, 'small', `${i}.raw.xz`), 'sha256')}`,
            }),
          ]),
        ),
      ),
    },
  };
  const path = join(work, 'repo.json');
  await writeFile(path, JSON.stringify(repo, null, 2));
  // The same repository with a template of 5,000 more versions: what a cache hit costs in a big repository.
  const many = {
    ...repo,
    templates: {
      ...repo.templates,
      many: {
        versions: Object.fromEntries(
          Array.from({ length: 5000 }, (_, i) => [
            `v${i}`,
            { source: 'web', handle: `many/${i}`, timestamp: i, compressed_hash: `sha256:${d.multiSha256}` },
          ]),
        ),
      },
    },
  };
  await writeFile(join(work, 'repo-5000.json'), JSON.stringify(many, null, 2));
  return path;
}

function nginxConfig(prefix: string, port: number): string {
  return nginxConf(
    prefix,
    `  log_format sent '$request_method $uri $status $body_bytes_sent';
  server { listen 127.0.0.1:${port}; root ${www}; access_log ${prefix}/access.log sent; }`,
  );
}

/** Log lines for `uri` written after `from` bytes of the access log: [status, bytes sent]. */
async function requestsSince(log: string, from: number, uri: string): Promise<Array<[number, number]>> {
  const text = (await readFile(log)).subarray(from).toString('utf8');
  return text.split('\n').flatMap((line) => {
    const [method, path, status, bytes] = line.split(' ');
    return method === 'GET' && path === uri ? [[Number(status), Number(bytes)] as [number, number]] : [];
  });
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

interface Sample {
  seconds: number[];
  cpu: number[];
  rssKiB: number[];
  /** allocated bytes / non-zero data bytes of the stored image */
  sparse: number[];
}

const samples = new Map<string, Sample>();
function record(name: string, seconds: number, extra: { rssKiB?: number; sparse?: number; cpu?: number } = {}): void {
  if (process.env.BENCH_VERBOSE)
    console.error(
      `bench: ${name}: ${seconds.toFixed(2)} s${extra.cpu !== undefined ? `, ${extra.cpu.toFixed(2)} CPU-s` : ''}`,
    );
  const sample = samples.get(name) ?? { seconds: [], cpu: [], rssKiB: [], sparse: [] };
  sample.seconds.push(seconds);
  if (extra.cpu !== undefined) sample.cpu.push(extra.cpu);
  if (extra.rssKiB !== undefined) sample.rssKiB.push(extra.rssKiB);
  if (extra.sparse !== undefined) sample.sparse.push(extra.sparse);
  samples.set(name, sample);
}

/** The delta cases' rounds alone (BENCH_ONLY=delta): they need only the version pair. */
async function deltaOnly(): Promise<number> {
  const delta = await startDeltaBench({ bin, work, cache, probe, run, shell, record });
  const deltaFacts: DeltaFacts[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      console.error(`bench: delta round ${round} of ${ROUNDS}`);
      deltaFacts.push(await delta.round(round));
    }
  } finally {
    await delta.close();
  }
  return report({ serveFacts: [], ociFacts: [], deltaFacts });
}

async function main(): Promise<number> {
  await run('bash', [join(project, 'bench', 'images.sh'), ...(ONLY === 'delta' ? ['delta'] : [])]);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  if (ONLY === 'delta') return deltaOnly();
  const d = await digests();
  const nonZeroBytes = Number(await readFile(join(cache, 'nonzero-blocks'), 'utf8')) * 4096;
  const xzSize = (await stat(join(cache, 'disk.raw.xz'))).size;
  const port = await freePort();
  const repo = await serveTree(d, port);
  const prefix = join(work, 'nginx');
  await mkdir(prefix);
  const nginx = await startNginx(prefix, nginxConfig(prefix, port), port);
  const accessLog = join(prefix, 'access.log');
  const url = (path: string) => `http://127.0.0.1:${port}/${path}`;
  const out = join(work, 'out');
  const rssFile = join(work, 'rss');
  let storeCount = 0;
  const crowdDownloads: number[] = [];
  const serveFacts: ServeFacts[] = [];
  const ociFacts: OciFacts[] = [];
  const deltaFacts: DeltaFacts[] = [];
  const delta = runs('delta') ? await startDeltaBench({ bin, work, cache, probe, run, shell, record }) : undefined;
  const oci = runs('oci')
    ? await startOciBench({
        bin,
        work,
        repo,
        xz: join(cache, 'disk.raw.xz'),
        xzSha256: d.multiSha256,
        run,
        shell,
        record,
      })
    : undefined;

  /** One cold `templates fetch` into a new store: its time, peak RSS and how sparse the stored image is. */
  const fetchCold = async (template: string, env: Record<string, string> = {}) => {
    const store = join(work, `store-${storeCount++}`);
    await rm(rssFile, { force: true });
    await shell('sync');
    const { seconds, cpu } = await run(
      process.execPath,
      ['--import', probe, bin, 'fetch', '-q', '--repo', repo, '--store', store, `bench:${template}`],
      { BENCH_RSS_FILE: rssFile, ...env },
    );
    const rssKiB = Number((await readFile(rssFile, 'utf8')).trim().split('\n').pop());
    const image = await stat(join(store, `bench:${template}:v1`));
    const sparse = (image.blocks * 512) / nonZeroBytes;
    await rm(store, { recursive: true, force: true });
    return { seconds, cpu, rssKiB, sparse };
  };
  const baseline = async (script: string) => {
    await rm(out, { recursive: true, force: true });
    await mkdir(out);
    await shell('sync');
    const result = await shell(`cd ${out} && ${script}`);
    await rm(out, { recursive: true, force: true });
    return result;
  };
  const base = async (name: string, script: string) => {
    const { seconds, cpu } = await baseline(script);
    record(name, seconds, { cpu });
  };
  const timedRun = async (name: string, args: string[]) => {
    const { seconds, cpu } = await run(process.execPath, [bin, ...args]);
    record(name, seconds, { cpu });
  };

  try {
    for (let round = 1; round <= ROUNDS; round++) {
      console.error(`bench: round ${round} of ${ROUNDS}`);
      if (runs('serve')) serveFacts.push(await serveRound({ bin, work, repo, url, run, shell, record }, round));
      if (oci) ociFacts.push(await oci.round(round));
      if (delta) deltaFacts.push(await delta.round(round));
      if (!runs('fetch')) continue;
      const xzUrl = url('multi/disk.xz');
      await base(FLOOR, `curl -s ${xzUrl} | xz -T0 -dc > file`);
      await base(SYNCED_FLOOR, `curl -s ${xzUrl} | xz -T0 -dc > file; sync file`);
      // Same work as a fetch: the hash a fetch checks, a sparse file, on disk. A fifo and `wait`: bash waits for the hasher.
      await base(
        SAME_SHA256,
        `mkfifo p; sha256sum < p > /dev/null & curl -s ${xzUrl} | tee p | xz -T0 -dc > file; wait; sync file`,
      );
      const fast = await fetchCold('fast');
      record(FAST, fast.seconds, fast);
      await base(
        SAME_SHA1,
        `mkfifo p; sha1sum < p > /dev/null & curl -s ${xzUrl} | xz -T0 -dc | tee p | dd of=file bs=1M iflag=fullblock conv=sparse status=none; wait; sync file`,
      );
      const lago = await fetchCold('lago');
      record(LAGO, lago.seconds, lago);
      await base(
        SEQUENTIAL,
        `curl -s -o disk.xz ${xzUrl} && xz -T0 -d disk.xz && sha1sum disk > /dev/null && qemu-img convert -f raw -O raw disk out`,
      );
      await base(CURL_RAW, `curl -s -o file ${url('raw/disk')}`);
      await base(
        SAME_RAW,
        `mkfifo p; sha1sum < p > /dev/null & curl -s ${url('raw/disk')} | tee p | dd of=file bs=1M iflag=fullblock conv=sparse status=none; wait; sync file`,
      );
      const raw = await fetchCold('raw');
      record(RAW, raw.seconds, raw);
      await base(SAME_ZST, `curl -s ${url('multi/disk.zst')} | zstd -d --sparse -c -q > file; sync file`);
      const zst = await fetchCold('zst');
      record(ZST, zst.seconds, zst);
      await base(
        QCOW_BASE,
        `curl -s ${url('qcow/disk.xz')} | xz -T0 -dc > f.qcow2 && qemu-img convert -f qcow2 -O raw f.qcow2 out`,
      );
      // What the fetch does besides: the .xz's digest as it streams, the converted image's digest (recorded), on disk.
      await base(
        SAME_QCOW,
        `mkfifo p; sha256sum < p > /dev/null & curl -s ${url('qcow/disk.xz')} | tee p | xz -T0 -dc > f.qcow2; wait; qemu-img convert -f qcow2 -O raw f.qcow2 out && sha256sum out > /dev/null; sync out`,
      );
      const qcow = await fetchCold('qcow');
      record(QCOW, qcow.seconds, qcow);
      await base(SINGLE_BASE, `curl -s ${url('single/disk.xz')} | xz -T0 -dc > file`);
      const single = await fetchCold('single');
      record(SINGLE, single.seconds, single);

      // Ten small templates in one command, against the largest of them alone (each into an empty store).
      const smallStore = join(work, 'small');
      await timedRun(SMALL_ONE, ['fetch', '-q', '--repo', repo, '--store', smallStore, `bench:small${SMALL - 1}`]);
      await rm(smallStore, { recursive: true, force: true });
      await timedRun(SMALL_ALL, [
        'fetch',
        '-q',
        '--repo',
        repo,
        '--store',
        smallStore,
        ...Array.from({ length: SMALL }, (_, i) => `bench:small${i}`),
      ]);
      await rm(smallStore, { recursive: true, force: true });
      // What each small template costs without Node: the .xz's digest, decoding, the stored image's digest, sync.
      const oneSmall = `one() { mkfifo p$1; sha256sum < p$1 > /dev/null & curl -s ${url('small')}/$1.xz | tee p$1 | xz -dc > f$1; wait; sha256sum f$1 > /dev/null; sync f$1; }; export -f one`;
      await base(SMALL_SHELL_ONE, `${oneSmall}; one ${SMALL - 1}`);
      await base(SMALL_SHELL_ALL, `${oneSmall}; seq 0 ${SMALL - 1} | xargs -P 3 -I{} bash -c 'one {}'`);

      // Cache hits: a store holding the image; each hit is paired with a bare node start.
      const hitStore = join(work, 'hits');
      await run(process.execPath, [bin, 'fetch', '-q', '--repo', repo, '--store', hitStore, 'bench:raw']);
      for (let i = 0; i < 5; i++) {
        const bare = await run(process.execPath, ['-e', '0']);
        record(NODE, bare.seconds, { cpu: bare.cpu });
        await timedRun(HIT, ['fetch', '-q', '--repo', repo, '--store', hitStore, 'bench:raw']);
        await timedRun(HIT_5000, [
          'fetch',
          '-q',
          '--repo',
          join(work, 'repo-5000.json'),
          '--store',
          hitStore,
          'bench:raw',
        ]);
      }
      await rm(hitStore, { recursive: true, force: true });

      // Eight processes ask for one template at once: one download, the others wait and reuse it.
      const crowdStore = join(work, 'crowd');
      const mark = (await stat(accessLog)).size;
      await shell('sync');
      const started = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: 8 }, () =>
          run(process.execPath, [bin, 'fetch', '-q', '--repo', repo, '--store', crowdStore, 'bench:fast']),
        ),
      );
      record(CROWD, Number(process.hrtime.bigint() - started) / 1e9);
      crowdDownloads.push((await requestsSince(accessLog, mark, '/multi/disk.xz')).length);
      await rm(crowdStore, { recursive: true, force: true });
    }

    if (!runs('fetch')) return report({ serveFacts, ociFacts, deltaFacts });
    // Resume: kill a fetch once half the .xz has arrived, fetch again, count what the server sends again.
    console.error('bench: resume and 8 GiB cases');
    const resumeStore = join(work, 'resume');
    const partial = join(resumeStore, '.tmp', 'bench:lago:v1', 'partial');
    const beforeKill = (await stat(accessLog)).size;
    const child = spawn(process.execPath, [bin, 'fetch', '-q', '--repo', repo, '--store', resumeStore, 'bench:lago'], {
      stdio: 'ignore',
    });
    let received = 0;
    for (let i = 0; i < 1200 && received < xzSize / 2; i++) {
      await sleep(25);
      received = await stat(partial).then(
        (s) => s.size,
        () => 0,
      );
    }
    child.kill('SIGKILL');
    await new Promise((done) => child.once('close', done));
    // nginx logs the killed request once it sees the reset: wait for that line, or it would count as sent again.
    for (let i = 0; i < 100 && (await requestsSince(accessLog, beforeKill, '/multi/disk.xz')).length === 0; i++)
      await sleep(50);
    const mark = (await stat(accessLog)).size;
    await run(process.execPath, [bin, 'fetch', '-q', '--repo', repo, '--store', resumeStore, 'bench:lago'], {
      TEMPLATES_LOCK_STALE_SECONDS: '2',
    });
    const resent = (await requestsSince(accessLog, mark, '/multi/disk.xz')).reduce((sum, [, bytes]) => sum + bytes, 0);
    const resumeShare = resent / xzSize;
    const killedAt = received / xzSize;
    await rm(resumeStore, { recursive: true, force: true });

    const big = await fetchCold('big');
    record(BIG, big.seconds, big);

    // Publishing: one round (minutes each). index fsyncs what it writes; so does the baseline.
    console.error('bench: index cases');
    const pub = join(work, 'pub');
    const indexOnce = async (name: string, extra: string[]) => {
      await rm(pub, { recursive: true, force: true });
      await mkdir(pub);
      await symlink(join(cache, 'disk.raw'), join(pub, 'bench-1.raw'));
      await shell('sync');
      await timedRun(name, ['index', pub, '--name', 'b', '-q', ...extra]);
    };
    await base(INDEX_BASE, `xz -T0 --block-size=16MiB -6 -c ${join(cache, 'disk.raw')} > file.xz; sync file.xz`);
    await indexOnce(INDEX_XZ, ['--formats', 'xz']);
    if (!process.env.BENCH_SKIP_ZST_INDEX) await indexOnce(INDEX_BOTH, []);
    await rm(pub, { recursive: true, force: true });
    return report({ fetch: { resumeShare, killedAt, crowdDownloads }, serveFacts, ociFacts, deltaFacts });
  } finally {
    await oci?.stop();
    await delta?.close();
    await nginx.stop();
    await rm(work, { recursive: true, force: true });
  }
}

interface Row {
  name: string;
  baseline?: string;
  ratio?: number;
  target?: string;
  ok?: boolean;
  rss?: number;
  sparse?: number;
  note?: string;
}

function report(facts: {
  fetch?: { resumeShare: number; killedAt: number; crowdDownloads: number[] };
  serveFacts: ServeFacts[];
  ociFacts: OciFacts[];
  deltaFacts: DeltaFacts[];
}): number {
  const extra = facts.fetch;
  const med = (name: string) => median(samples.get(name)!.seconds);
  const rows: Row[] = [];
  const add = (name: string, base: string | undefined, limit: number | undefined, note?: string) => {
    const sample = samples.get(name);
    if (!sample) return;
    const row: Row = { name, ...(note ? { note } : {}) };
    if (sample.rssKiB.length) row.rss = Math.max(...sample.rssKiB) / 1024;
    if (sample.sparse.length) row.sparse = Math.max(...sample.sparse);
    if (base) {
      row.baseline = base;
      row.ratio = med(name) / med(base);
      if (limit !== undefined) {
        row.target = `≤ ${limit.toFixed(2)}`;
        row.ok = row.ratio <= limit;
      }
    }
    rows.push(row);
  };
  // Every case against the shell pipeline doing the same work (hash, sparse file, sync): never slower.
  add(FAST, SAME_SHA256, 1.0);
  add(LAGO, SAME_SHA1, 1.0);
  add(RAW, SAME_RAW, 1.0);
  add(QCOW, SAME_QCOW, 1.0);
  // The synced plain floor: with SHA extensions, hashing is cheap enough that a fetch stays close to it.
  // On CPUs with SHA extensions only: without them, hashing alone is slower than the floor allows.
  add(FAST, SYNCED_FLOOR, SHA_NI ? 1.08 : undefined, SHA_NI ? undefined : 'information: no sha_ni on this CPU');
  add(LAGO, SYNCED_FLOOR, SHA_NI ? 1.2 : undefined, SHA_NI ? undefined : 'information: no sha_ni on this CPU');
  add(ZST, FLOOR, 0.35);
  add(ZST, SAME_ZST, 1.15);
  // Earlier baselines, kept for comparison: they neither hash nor sync, so they understate the floor.
  add(FAST, FLOOR, undefined, 'information: the baseline neither hashes nor syncs');
  add(LAGO, SEQUENTIAL, 0.6);
  add(RAW, CURL_RAW, undefined, 'information: the baseline neither hashes nor syncs');
  add(QCOW, QCOW_BASE, 1.1);
  add(HIT, NODE, 1.3);
  add(HIT_5000, NODE, 1.5);
  add(SMALL_ALL, SMALL_ONE, 1.3);
  add(
    SMALL_SHELL_ALL,
    SMALL_SHELL_ONE,
    undefined,
    'information: on 2 cores the work per template, not a start, dominates',
  );
  add(SMALL_ALL, SMALL_SHELL_ALL, undefined, 'information: against bash doing the same work');
  add(CROWD, FAST, 1.2);
  add(SINGLE, SINGLE_BASE, undefined, 'information: one block decodes on one core');
  add(BIG, undefined, undefined);
  add(INDEX_XZ, INDEX_BASE, 1.05, 'one round');
  add(
    INDEX_BOTH,
    INDEX_BASE,
    undefined,
    'information, one round: on 2 cores xz already takes both, so zstd -19 adds its own time',
  );
  // serve: time ratios; "≥ 0.5× nginx's throughput" is a time ratio ≤ 2.
  add('1 client from serve', '1 client from nginx', 2.0);
  add('8 clients from serve', '8 clients from nginx', undefined, 'information');
  add(
    'neighbour fetch through serve, pull-through (cold cache)',
    'fetch from upstream directly (multi-block xz, compressed_hash)',
    1.15,
  );
  // Delta: a version pair (1 GiB ext4, v2 rebuilt from its directory); the same run's whole fetch and casync.
  add(DELTA, DELTA_WHOLE, 1.0);
  add(DELTA_SLOW, DELTA_WHOLE_SLOW, 0.35);
  add(DELTA, DELTA_CASYNC, 0.5);
  add(INDEX_CHUNKS, CASYNC_MAKE, 1.2);
  add(DELTA_WHOLE, DELTA_ZST_BASE, 1.15);
  add(DELTA_WHOLE, DELTA_XZ_FLOOR, 0.35);
  add('fetch oci:// from the registry', 'curl BLOB_URL | xz -T0 -dc > f; sync f', 1.1);
  add('push to the registry (kept .xz)', 'curl -T of the blob to the registry (POST, PUT)', 1.2);

  const checks: Array<[string, string, boolean]> = [];
  if (facts.serveFacts.length) {
    const served = facts.serveFacts;
    const gbps = served[0]!.bytes / med('1 client from serve') / 1e9;
    const rssMax = Math.max(...served.map((f) => f.rssMiB));
    checks.push(["serve: one client's rate", `${gbps.toFixed(2)} GB/s (target ≥ 1 GB/s)`, gbps >= 1]);
    checks.push(['serve: peak RSS with 8 clients', `${rssMax.toFixed(0)} MiB (target ≤ 200)`, rssMax <= 200]);
    checks.push([
      "serve: the cache host's CPU during a pull (information)",
      `${median(served.map((f) => f.pullCpuSeconds)).toFixed(1)} CPU-s: on one 2-core machine it is taken from the neighbour`,
      true,
    ]);
    checks.push([
      'serve: usage API, 1,000 entries embedded',
      `${served[0]!.embedColdMs.toFixed(0)} ms first, ${served[0]!.embedWarmMs.toFixed(0)} ms next (target < 100 ms)`,
      served[0]!.embedColdMs < 100,
    ]);
  }
  if (facts.ociFacts.length) {
    const sent = facts.ociFacts.map((f) => f.againUploaded);
    checks.push([
      'push: blobs sent by a second push of the same template',
      `${sent.join(', ')} (target: 0 each round)`,
      sent.every((n) => n === 0),
    ]);
  }
  if (facts.deltaFacts.length) checks.push(...deltaChecks(facts.deltaFacts));
  if (!extra) return printReport(rows, checks, med);
  const downloads = extra.crowdDownloads;
  const rss = rows.filter((row) => row.rss !== undefined).map((row) => row.rss!);
  const rss2 = Math.max(...samples.get(LAGO)!.rssKiB) / 1024;
  const rss8 = Math.max(...samples.get(BIG)!.rssKiB) / 1024;
  const sparse = rows.filter((row) => row.sparse !== undefined).map((row) => row.sparse!);
  checks.push(
    [
      '8 processes: downloads of the image',
      `${downloads.join(', ')} (target: 1 each round)`,
      downloads.every((n) => n === 1),
    ],
    [
      'resume after a kill',
      `${(extra.resumeShare * 100).toFixed(1)}% of the file sent again, killed at ${(extra.killedAt * 100).toFixed(0)}% (target ≤ 60%)`,
      extra.resumeShare <= 0.6,
    ],
    [
      'peak RSS of a fetch',
      `${Math.max(...rss).toFixed(0)} MiB max; lago 2 GiB ${rss2.toFixed(0)} MiB, 8 GiB ${rss8.toFixed(0)} MiB (target ≤ 150, same for both)`,
      Math.max(...rss) <= 150 && Math.abs(rss8 - rss2) <= 16,
    ],
    [
      'stored image: allocated / non-zero data',
      `${Math.max(...sparse).toFixed(3)} max (target ≤ 1.05)`,
      Math.max(...sparse) <= 1.05,
    ],
  );
  return printReport(rows, checks, med);
}

/** What the delta rounds moved: ratios of bytes on the wire, the chunk store's size, peak RSS. */
function deltaChecks(facts: DeltaFacts[]): Array<[string, string, boolean]> {
  const m = (pick: (f: DeltaFacts) => number) => median(facts.map(pick));
  const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
  const ours = m((f) => f.ours);
  const casync = m((f) => f.casync);
  const casyncDefault = facts[0]!.casyncDefault;
  const rss = Math.max(...facts.map((f) => f.rssMiB));
  return [
    [
      'delta: bytes moved ÷ casync extract --seed, same sizes (8K:32K:128K)',
      `${(ours / casync).toFixed(3)} (${mib(ours)} against ${mib(casync)}; target ≤ 1.02)`,
      ours / casync <= 1.02,
    ],
    [
      "delta: bytes moved at our sizes ÷ casync's at its defaults (16K:64K:256K), information",
      casyncDefault ? `${(ours / casyncDefault).toFixed(3)} (${mib(casyncDefault)} for casync)` : 'not measured',
      true,
    ],
    [
      'delta: bytes moved ÷ the whole .zst of v2, information',
      `${(ours / m((f) => f.zst)).toFixed(3)} (whole fetch moved ${mib(m((f) => f.whole))})`,
      true,
    ],
    [
      'delta: chunk store of v1 and v2 ÷ their two .zst files, information',
      `${(m((f) => f.chunkStore) / m((f) => f.twoZst)).toFixed(2)} (${mib(m((f) => f.chunkStore))} against ${mib(m((f) => f.twoZst))})`,
      true,
    ],
    ['delta: peak RSS of a delta fetch', `${rss.toFixed(0)} MiB (target ≤ 150)`, rss <= 150],
  ];
}

function printReport(rows: Row[], checks: Array<[string, string, boolean]>, med: (name: string) => number): number {
  const lines: string[] = [];
  lines.push(
    `${ROUNDS} rounds, medians; ${new Date().toISOString().slice(0, 10)}, ${process.platform} ${process.arch}, ${cpus().length} cores, node ${process.version}`,
  );
  lines.push(
    `CPU: ${cpus()[0]?.model ?? 'unknown'}; ${SHA_NI ? 'sha_ni: the synced-floor targets (1.08, 1.20) apply' : 'no sha_ni: the synced-floor targets do not apply'}. CPU s: user + system seconds of every process.`,
  );
  lines.push('');
  lines.push(
    '| case | median s | CPU s | baseline | baseline s | CPU s | ratio | target | peak RSS MiB | alloc/data | |',
  );
  lines.push('|---|---:|---:|---|---:|---:|---:|---|---:|---:|---|');
  const cpuOf = (name: string | undefined) => {
    const values = name ? samples.get(name)?.cpu : undefined;
    return values?.length ? median(values).toFixed(2) : '';
  };
  // Case names hold shell pipes: escaped, they stay inside their table cell.
  const cell = (text: string) => text.replaceAll('|', '\\|');
  for (const row of rows) {
    lines.push(
      `| ${cell(row.name)} | ${med(row.name).toFixed(2)} | ${cpuOf(row.name)} | ${cell(row.baseline ?? '')} | ${row.baseline ? med(row.baseline).toFixed(2) : ''} | ${cpuOf(row.baseline)} | ${row.ratio?.toFixed(2) ?? ''} | ${[row.target, row.note].filter(Boolean).join('; ')} | ${row.rss?.toFixed(0) ?? ''} | ${row.sparse?.toFixed(3) ?? ''} | ${row.ok === undefined ? '' : row.ok ? 'met' : 'MISSED'} |`,
    );
  }
  lines.push('');
  lines.push('| check | result | |');
  lines.push('|---|---|---|');
  for (const [name, text, ok] of checks) lines.push(`| ${name} | ${text} | ${ok ? 'met' : 'MISSED'} |`);
  const missed = rows.filter((row) => row.ok === false).length + checks.filter(([, , ok]) => !ok).length;
  lines.push('');
  lines.push(missed ? `${missed} target(s) missed` : 'every target met');
  console.log(lines.join('\n'));
  return missed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`bench: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  },
);

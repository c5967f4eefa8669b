// `npm run farm`: a cache host, an upstream with a mirror and 32 neighbours on shaped links, under a timetable of faults; prints the report.
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { freePort } from '../test/helpers/nginx.js';
import { type CacheHost, startCacheHost } from './cache-host.js';
import { createJobTraffic } from './jobs.js';
import { type Link, startLink } from './link.js';
import { createNeighbours } from './neighbours.js';
import { buildReport, formatReport, passed } from './report.js';
import { demandAt, describeSchedule, type FaultEvent, faultSchedule } from './schedule.js';
import { startUpstream, type Upstream } from './upstream.js';

const exec = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const project = resolve(here, '../../..'); // farm/.build/farm/run.js
const bin = join(project, 'bin', 'templates');

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    neighbours: { type: 'string', default: '32' },
    seed: { type: 'string' },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const minutes = Number(values.minutes);
const count = Number(values.neighbours);
if (!(minutes > 0 && minutes <= 120) || !(count >= 1 && count <= 256)) {
  console.error('farm: --minutes must be in (0, 120] and --neighbours in [1, 256]');
  process.exit(2);
}
const seed = Number(values.seed ?? Date.now() % 1_000_000);

/** mulberry32: the run's choices repeat with its seed (the timing of processes does not). */
function seeded(start: number): () => number {
  let a = start >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const say = (line: string) => console.error(`farm: ${line}`);

async function main(): Promise<number> {
  const random = seeded(seed);
  const duration = minutes * 60_000;
  await exec('bash', [join(project, 'farm', 'images.sh')]);
  const published = join(project, 'farm', '.cache', 'pub');
  const work = await mkdtemp(join(tmpdir(), 'templates-farm-'));
  const notes: string[] = [`seed ${seed}`];
  const closers: Array<() => Promise<unknown>> = [];
  try {
    // The links: upstream 100 Mbit/s, 20 ms, 0.1 % loss; the neighbours' LAN 1 Gbit/s, 1 ms.
    const wan = { bitsPerSecond: 100e6, latencyMs: 20, loss: 0.001 };
    const lan = { bitsPerSecond: 1e9, latencyMs: 1, loss: 0 };
    const [primaryPort, mirrorPort, servePort] = [await freePort(), await freePort(), await freePort()];
    const primary: Link = await startLink('primary', primaryPort, wan, random);
    const mirror: Link = await startLink('mirror', mirrorPort, wan, random);
    const lanLink: Link = await startLink('neighbours', servePort, lan, random);
    closers.push(
      () => primary.close(),
      () => mirror.close(),
      () => lanLink.close(),
    );
    say('publishing the templates (templates index, incremental)');
    await exec(process.execPath, [
      bin,
      'index',
      published,
      '--name',
      'farm',
      '--base-url',
      `http://127.0.0.1:${primary.port}/`,
      '--mirror',
      `http://127.0.0.1:${mirror.port}/`,
      '-q',
    ]);
    const upstream: Upstream = await startUpstream(work, published, primaryPort, mirrorPort);
    closers.push(() => upstream.stop());
    const serveLog = createWriteStream(join(work, 'serve.log'));
    closers.push(() => new Promise((done) => serveLog.end(done)));
    const host: CacheHost = await startCacheHost({
      bin,
      mount: join(work, 'cache-host'),
      sizeMiB: 1024,
      port: servePort,
      repo: `http://127.0.0.1:${primary.port}/farm.json`,
      publicUrl: `http://127.0.0.1:${lanLink.port}`,
      env: { HOME: work, TEMPLATES_IDLE_TIMEOUT_SECONDS: '10', TEMPLATES_LOCK_STALE_SECONDS: '2' },
      log: (line) => serveLog.write(`${line}\n`),
    });
    closers.push(() => host.close(values.keep));
    if (!host.ownFilesystem)
      notes.push('not root: the store is not on a tmpfs of its own, so the disk-full fault is skipped');
    const server = `http://127.0.0.1:${lanLink.port}`;
    const started = performance.now();
    const now = () => performance.now() - started;
    const demand = (at: number) => demandAt(at, duration);
    const onCache = new Set<string>();
    const jobs = createJobTraffic({ server, demand, now, random });
    const neighbours = createNeighbours({
      bin,
      work: join(work, 'neighbours'),
      count,
      server,
      demand,
      cacheHas: (ref) => onCache.has(ref),
      served: (ref) => onCache.add(ref),
      jobCreated: (id) => jobs.acknowledged.add(id),
      now,
      random,
    });
    await mkdir(join(work, 'neighbours'), { recursive: true });
    const lostOnTheWay = new Set<number>();

    const restart = async () => {
      for (let i = 0; ; i++) {
        try {
          await host.start();
          return;
        } catch (error) {
          if (i >= 5) throw error;
          await sleep(1000);
        }
      }
    };
    /** Waits (up to 30 s) until upstream bytes flow again: a pull is under way. */
    const pullUnderWay = async () => {
      const total = () => primary.bytes().down + mirror.bytes().down;
      const from = total();
      for (let i = 0; i < 600 && total() - from < 1 << 20; i++) await sleep(50);
    };
    const apply = async (event: FaultEvent, on: boolean) => {
      switch (event.kind) {
        case 'kill-cache-host':
          await pullUnderWay();
          await host.kill();
          say(`cache host SIGKILLed at ${(now() / 1000).toFixed(1)} s; restarting`);
          await sleep(1000);
          await restart();
          for (const id of await jobs.lost(false)) lostOnTheWay.add(id);
          return;
        case 'primary-500':
          return upstream.fail500(on);
        case 'mirror-corrupt':
          return upstream.corrupt(event.target!, on);
        case 'primary-reset':
          return primary.fault(on ? 'reset' : 'none', 256 * 1024);
        case 'primary-stall':
          return primary.fault(on ? 'stall' : 'none');
        case 'disk-full':
          if (!host.ownFilesystem) return;
          return on ? host.fill(64 * 1024) : host.unfill();
        case 'kill-neighbour':
          for (let i = 0; i < 50 && !neighbours.killOne(); i++) await sleep(100);
          return;
      }
    };
    const schedule = faultSchedule(duration);
    const faults = Promise.all(
      schedule.map(async (event) => {
        const attempt = (on: boolean) =>
          apply(event, on).catch((error: Error) =>
            notes.push(`fault ${event.kind} could not be applied: ${error.message}`),
          );
        await sleep(Math.max(0, event.at - now()));
        await attempt(true);
        if (event.until === undefined) return;
        await sleep(Math.max(0, event.until - now()));
        await attempt(false);
      }),
    );
    const sampler = setInterval(() => void host.sample(), 500);
    const stop = new AbortController();
    say(`running ${minutes} min with ${count} neighbours (seed ${seed})`);
    const traffic = Promise.all([neighbours.run(stop.signal), jobs.run(stop.signal)]);
    await sleep(duration);
    stop.abort();
    await faults;
    await traffic;
    clearInterval(sampler);
    say('settling: waiting for jobs in flight');
    for (let i = 0; i < 90; i++) {
      const states = await jobs.states();
      if (!states.wait && !states.fetching) break;
      await sleep(1000);
    }
    const lost = new Set([...lostOnTheWay, ...(await jobs.lost(true))]);
    const jobStates = await jobs.states();
    await host.stop();
    say('verifying every store');
    let checked = 0;
    const corrupt: string[] = [];
    for (const store of [host.store, ...neighbours.stores]) {
      const { stdout } = await exec(process.execPath, [bin, 'verify', '--json', '--store', store]).catch(
        (error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }),
      );
      for (const line of stdout.split('\n').filter(Boolean)) {
        const result = JSON.parse(line) as { ref: string; status: string };
        checked += 1;
        if (!['ok', 'unverifiable', 'adopted'].includes(result.status))
          corrupt.push(`${result.ref} in ${store} (${result.status})`);
      }
    }
    const report = buildReport({
      minutes,
      neighbours: count,
      records: neighbours.records,
      checked,
      corrupt,
      jobs: { acknowledged: jobs.acknowledged.size, lost: [...lost], states: jobStates, counts: jobs.counts },
      upstream: await upstream.downloads(),
      restarts: host.restarts,
      peaks: host.peaks(),
      links: { primary: primary.bytes(), mirror: mirror.bytes(), neighbours: lanLink.bytes() },
      schedule: describeSchedule(schedule),
      notes,
    });
    await writeFile(join(work, 'fetches.json'), JSON.stringify(neighbours.records, null, 1));
    console.log(formatReport(report));
    if (values.json) console.log(JSON.stringify(report));
    return passed(report) ? 0 : 1;
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    if (!values.keep) await rm(work, { recursive: true, force: true });
    else say(`kept ${work} (a tmpfs is mounted at ${join(work, 'cache-host')}: umount it when done)`);
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(2);
  },
);

// The farm's parts on their own: the timetable, the report, log and error parsing, and the shaped link over real sockets.
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { startLink } from '../../farm/link.js';
import { errorCode, type FetchRecord } from '../../farm/neighbours.js';
import { buildReport, type FarmInputs, formatReport, passed, quantile } from '../../farm/report.js';
import { ARRIVALS, demandAt, faultSchedule } from '../../farm/schedule.js';
import { downloadOf } from '../../farm/upstream.js';

describe('the timetable', () => {
  it('brings versions into demand in order and times every fault inside the run, each meeting a pull', () => {
    const duration = 300_000;
    expect(demandAt(0, duration)).toEqual(['farm:alpine:v1']);
    expect(demandAt(duration * 0.86, duration)).toEqual([...ARRIVALS]);
    const events = faultSchedule(duration);
    for (const event of events) {
      expect(event.at).toBeGreaterThanOrEqual(0);
      expect(event.until ?? event.at).toBeLessThanOrEqual(duration);
      expect(event.until ?? event.at).toBeGreaterThanOrEqual(event.at);
    }
    expect(events.filter((e) => e.kind === 'kill-cache-host')).toHaveLength(2);
    expect(events.filter((e) => e.kind === 'kill-neighbour')).toHaveLength(3);
    // Each windowed fault is on while the version it targets arrives.
    for (const event of events.filter((e) => e.until !== undefined && e.target?.startsWith('farm:'))) {
      const arrival = ARRIVALS.indexOf(event.target as (typeof ARRIVALS)[number]);
      expect(demandAt(event.at, duration)).not.toContain(ARRIVALS[arrival]);
      expect(demandAt(event.until!, duration)).toContain(ARRIVALS[arrival]);
    }
  });
});

describe('the report', () => {
  const record = (outcome: FetchRecord['outcome'], extra: Partial<FetchRecord> = {}): FetchRecord => ({
    neighbour: 0,
    ref: 'farm:alpine:v1',
    at: 0,
    ms: 100,
    outcome,
    cacheHit: true,
    via: 'repo',
    ...extra,
  });
  const inputs = (overrides: Partial<FarmInputs> = {}): FarmInputs => ({
    minutes: 1,
    neighbours: 2,
    records: [
      record('verified', { ms: 100 }),
      record('verified', { ms: 300, reusedBytes: 5 }),
      record('error', { code: 'STORE_FULL' }),
      record('killed'),
    ],
    checked: 4,
    corrupt: [],
    jobs: { acknowledged: 3, lost: [], states: { done: 3 }, counts: { created: 3 } },
    upstream: new Map([
      ['alpine/v1', 2],
      ['debian/v1', 4],
    ]),
    restarts: 2,
    peaks: { rssKiB: 204_800, files: 40, storeBytes: 300 * 1024 * 1024 },
    links: { primary: { down: 1, up: 2 } },
    schedule: ['0 s kill-cache-host'],
    notes: [],
    ...overrides,
  });

  it('counts every outcome, the cache-hit quantiles and the versions downloaded more than 1 + restarts', () => {
    const report = buildReport(inputs());
    expect(report).toMatchObject({
      fetches: 4,
      verified: 2,
      typed_errors: 1,
      untyped_errors: 0,
      hung: 0,
      killed: 1,
      errors_by_code: { STORE_FULL: 1 },
      delta_fetches: 1,
      corrupt: 0,
      jobs_lost: 0,
      upstream_over: ['debian/v1'],
      cache_hit_ms: { count: 2, p50: 100, p99: 300 },
      cache_host_peak_rss_mib: 200,
      cache_host_peak_store_mib: 300,
    });
    expect(passed(report)).toBe(true);
    expect(formatReport(report)).toContain('farm: passed');
  });

  it('fails on a corrupt image, a lost job, an untyped error or a command that hung', () => {
    expect(passed(buildReport(inputs({ corrupt: ['farm:a:v1 in /s (corrupt)'] })))).toBe(false);
    expect(passed(buildReport(inputs({ jobs: { acknowledged: 1, lost: [7], states: {}, counts: {} } })))).toBe(false);
    expect(passed(buildReport(inputs({ records: [record('error', { code: 'UNTYPED' })] })))).toBe(false);
    const hung = buildReport(inputs({ records: [record('error', { code: 'HUNG' })] }));
    expect(hung).toMatchObject({ hung: 1, typed_errors: 0 });
    expect(passed(hung)).toBe(false);
    expect(formatReport(hung)).toContain('farm: FAILED');
  });

  it('takes nearest-rank quantiles', () => {
    expect(quantile([], 0.5)).toBe(0);
    expect(quantile([5, 1, 3], 0.5)).toBe(3);
    expect(
      quantile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        0.99,
      ),
    ).toBe(99);
  });

  it("reads a whole-image download from nginx's log, and the code from a CLI's error line", () => {
    expect(downloadOf('GET /alpine/v1/disk.raw.zst 200 6477933')).toBe('alpine/v1');
    expect(downloadOf('GET /alpine/v1/disk.raw 206 100')).toBe('alpine/v1');
    expect(downloadOf('GET /alpine/v1/disk.raw.caibx 200 100')).toBeUndefined();
    expect(downloadOf('GET /alpine/v1/disk.raw.zst 500 100')).toBeUndefined();
    expect(downloadOf('HEAD /alpine/v1/disk.raw.zst 200 0')).toBeUndefined();
    expect(errorCode('templates: x failed [SOURCE_UNREACHABLE]\n')).toBe('SOURCE_UNREACHABLE');
    expect(errorCode('templates: internal error: stopped before the command finished\n')).toBe('UNTYPED');
  });
});

describe('the shaped link', () => {
  const echoServer = async () => {
    const server = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.pipe(socket);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return server;
  };
  const roundTrip = async (socket: Socket, bytes: number) => {
    let got = 0;
    const done = new Promise<void>((resolve) =>
      socket.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got >= bytes) resolve();
      }),
    );
    socket.write(Buffer.alloc(bytes, 7));
    await done;
    return got;
  };

  it('carries bytes both ways and counts them; a stall holds them; a reset cuts every connection', async () => {
    const server = await echoServer();
    const link = await startLink('test', (server.address() as AddressInfo).port, {
      bitsPerSecond: 1e9,
      latencyMs: 1,
      loss: 0.01,
    });
    try {
      const socket = connect(link.port, '127.0.0.1');
      await once(socket, 'connect');
      expect(await roundTrip(socket, 256 * 1024)).toBe(256 * 1024);
      expect(link.bytes()).toEqual({ up: 256 * 1024, down: 256 * 1024 });
      link.fault('stall');
      let during = 0;
      socket.on('data', (chunk: Buffer) => {
        during += chunk.length;
      });
      socket.write(Buffer.alloc(1000));
      await sleep(300);
      expect(during).toBe(0);
      link.fault('none');
      for (let i = 0; i < 100 && during < 1000; i++) await sleep(20);
      expect(during).toBe(1000);
      socket.on('error', () => undefined);
      const closed = new Promise((resolve) => socket.once('close', resolve));
      link.fault('reset');
      await closed;
      link.fault('none');
    } finally {
      await link.close();
      server.close();
    }
  });
});

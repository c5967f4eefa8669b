// Mirrors, pure parts: the repository's `mirrors`, config rules, the servers of a source, how copies compare, and health order.
import { describe, expect, it } from 'vitest';
import { configuredMirrors } from '../../src/api/status.js';
import { isTemplatesError, parseRepository } from '../../src/index.js';
import { rewriteByRules } from '../../src/http/mirrors.js';
import { repositoryMirrorUrls, sourceServers } from '../../src/repository/mirrors.js';
import { compareCopies } from '../../src/status/compare.js';
import type { CopyReading } from '../../src/status/read-copy.js';
import { FAILURE_MEMORY_MS, createServerHealth } from '../../src/store/server-health.js';

const parse = (data: unknown) =>
  parseRepository(JSON.stringify(data), 'repo.json', { env: {}, home: '/', allowFileSources: false });
const repo = (
  extra: Record<string, unknown>,
  versions: Record<string, unknown> = { v1: { source: 's', handle: 'h', timestamp: 1 } },
) => ({
  name: 'r',
  sources: { s: { type: 'http', args: { baseurl: 'http://a/repo/' } } },
  templates: { t: { versions } },
  ...extra,
});

describe("the repository JSON's mirrors", () => {
  it('attach to their http source; malformed parts are problems, never fatal', () => {
    const good = parse(repo({ mirrors: { s: ['http://b/repo/', 'https://c/'] } }));
    const version = good.templates.get('t');
    expect(version?.ok && [...version.value.versions.values()][0]).toMatchObject({
      ok: true,
      value: { source: { mirrors: ['http://b/repo/', 'https://c/'] } },
    });
    expect(good.problems).toEqual([]);
    const bad = parse(repo({ mirrors: { s: ['ftp://x/', 'http://ok/'], nope: ['http://y/'] } }));
    expect(bad.problems).toEqual([
      'repo.json: mirrors["s"]: not an http(s) URL: "ftp://x/"; ignored',
      'repo.json: mirrors["nope"]: no http source of that name; ignored',
    ]);
    expect(parse(repo({ mirrors: ['http://b/'] })).problems[0]).toContain('mirrors ignored');
    expect(parse(repo({ revision: 7, published: 1_700_000_000 }))).toMatchObject({
      revision: 7,
      published: 1_700_000_000,
    });
  });

  it('give the servers of a source in order, and the mirror URLs of the JSON itself', () => {
    const rules = [{ prefix: 'http://a/', mirrors: ['http://rule/x'] }];
    expect(rewriteByRules('http://a/repo/r.json', rules)).toEqual(['http://rule/x/repo/r.json']);
    expect(sourceServers({ baseurl: 'http://a/repo', mirrors: ['http://b/repo/', 'http://a/repo/'] }, rules)).toEqual([
      'http://a/repo',
      'http://b/repo/',
      'http://rule/x/repo',
    ]);
    expect(
      repositoryMirrorUrls('http://a/repo/r.json', rules, [{ baseurl: 'http://a/repo/', mirrors: ['http://b/m/'] }]),
    ).toEqual(['http://rule/x/repo/r.json', 'http://b/m/r.json']);
    expect(
      repositoryMirrorUrls('http://z/r.json', rules, [{ baseurl: 'http://a/repo/', mirrors: ['http://b/m/'] }]),
    ).toEqual([]);
  });

  it('config rules come from the file\'s "mirrors" and TEMPLATES_MIRRORS (JSON or PREFIX=M,M pairs); anything else is CONFIG_INVALID', () => {
    const file = { path: '/c.json', data: { mirrors: { 'http://a/': ['http://m1/'] } } };
    expect(
      configuredMirrors(file, { TEMPLATES_MIRRORS: 'http://b/=http://m2/,http://m3/ http://c/=http://m4/' }),
    ).toEqual([
      { prefix: 'http://b/', mirrors: ['http://m2/', 'http://m3/'] },
      { prefix: 'http://c/', mirrors: ['http://m4/'] },
      { prefix: 'http://a/', mirrors: ['http://m1/'] },
    ]);
    expect(configuredMirrors(undefined, { TEMPLATES_MIRRORS: '{"http://b/": ["http://m/"]}' })).toEqual([
      { prefix: 'http://b/', mirrors: ['http://m/'] },
    ]);
    for (const [bad, env] of [
      [{ mirrors: ['http://m/'] }, {}],
      [{}, { TEMPLATES_MIRRORS: 'http://b/' }],
      [{ mirrors: { 'http://a/': 'http://m/' } }, {}],
    ] as const) {
      try {
        configuredMirrors({ path: '/c.json', data: bad }, env);
        expect.unreachable();
      } catch (error) {
        expect(isTemplatesError(error, 'CONFIG_INVALID')).toBe(true);
      }
    }
  });
});

describe("how a mirror's copy compares", () => {
  const reading = (data: unknown, digest: string): CopyReading => ({
    reachable: true,
    httpStatus: 200,
    latencySeconds: 0.001,
    error: null,
    lastModified: null,
    etag: null,
    digest,
    repository: parse(data),
    text: null,
  });
  it('in sync, behind by revisions, behind without revisions, diverged, down, unknown', () => {
    const p = reading(repo({ revision: 3, published: 100 }), 'p');
    expect(compareCopies(p, reading(repo({ revision: 3, published: 100 }), 'p'))).toEqual({
      state: 'in-sync',
      behindRevisions: 0,
      since: null,
    });
    expect(compareCopies(p, reading(repo({ revision: 1 }), 'm'))).toEqual({
      state: 'behind',
      behindRevisions: 2,
      since: 100,
    });
    expect(compareCopies(p, reading(repo({ revision: 3 }), 'm')).state).toBe('diverged');
    expect(compareCopies(p, reading(repo({ revision: 4 }), 'm')).state).toBe('diverged');
    const lagoP = reading(
      repo({}, { v1: { source: 's', handle: 'h', timestamp: 1 }, v2: { source: 's', handle: 'h2', timestamp: 2 } }),
      'p',
    );
    expect(compareCopies(lagoP, reading(repo({}), 'm'))).toMatchObject({ state: 'behind', behindRevisions: null });
    expect(compareCopies(lagoP, reading(repo({}, { v9: { source: 's', handle: 'h', timestamp: 1 } }), 'm')).state).toBe(
      'diverged',
    );
    expect(compareCopies(p, { ...p, repository: null, reachable: false }).state).toBe('down');
    expect(compareCopies({ ...p, repository: null }, p).state).toBe('unknown');
  });
});

describe('server health', () => {
  it("orders the primary first, then mirrors by latency; a recent failure goes last until it is forgotten; a partial's server leads", async () => {
    let now = 1_000_000;
    const health = createServerHealth(undefined, () => now);
    const servers = ['http://p/', 'http://m1/', 'http://m2/'];
    expect(await health.order(servers)).toEqual(servers);
    health.success('http://m1/', 50);
    health.success('http://m2/', 5);
    expect(await health.order(servers)).toEqual(['http://p/', 'http://m2/', 'http://m1/']);
    health.failure('http://p/');
    health.failure('http://m2/');
    health.failure('http://m2/');
    expect(await health.order(servers)).toEqual(['http://m1/', 'http://p/', 'http://m2/']);
    expect(await health.order(servers, 'http://m1/')).toEqual(['http://m1/', 'http://p/', 'http://m2/']);
    now += FAILURE_MEMORY_MS;
    expect(await health.order(servers)).toEqual(['http://p/', 'http://m2/', 'http://m1/']);
    expect(await health.order(servers, 'http://m1/')).toEqual(['http://m1/', 'http://p/', 'http://m2/']);
  });
});

// References and version choice: repo:name[:version], newest by timestamp, typed errors for everything unknown.
import { describe, expect, it } from 'vitest';
import { parseReference, parseRepository, resolveReference, RepositorySet } from '../../src/index.js';

const options = { env: {}, home: '/', allowFileSources: true };
const repo = (name: string, templates: Record<string, Record<string, number>>) =>
  parseRepository(
    JSON.stringify({
      name,
      sources: { s: { type: 'http', args: { baseurl: 'http://h/' } } },
      templates: Object.fromEntries(
        Object.entries(templates).map(([t, vs]) => [
          t,
          {
            versions: Object.fromEntries(
              Object.entries(vs).map(([v, ts]) => [v, { source: 's', handle: `${t}/${v}`, timestamp: ts }]),
            ),
          },
        ]),
      ),
    }),
    `${name}.json`,
    options,
  );
const set = (...repos: ReturnType<typeof repo>[]): RepositorySet => new RepositorySet(repos);

describe('references', () => {
  it.each(['', 'a:b:c:d', 'repo:..', 'repo:.:v', 'a/b', 'r:t:v\u0000', 'r:t:v\n', 'r::v', 'r:t:'])(
    'refuses %j with BAD_REFERENCE',
    (text) => {
      expect(() => parseReference(text)).toThrow(
        expect.objectContaining({ code: 'BAD_REFERENCE', fields: expect.objectContaining({ ref: text }) }),
      );
    },
  );

  it('accepts names of letters, digits and . _ + -', () => {
    expect(parseReference('phx_repo:el7.3-base:v1+b').parts).toEqual(['phx_repo', 'el7.3-base', 'v1+b']);
  });
});

describe('resolveReference', () => {
  const phx = repo('phx', {
    centos7: { v1: 1428328144, v4: 1438179094, latest: 1000, v3: 1438179093 },
    tie: { a: 5, b: 5 },
  });
  const other = repo('other', { centos7: { v9: 1 } });

  it('picks the newest version by timestamp, whatever the names say', () => {
    expect(resolveReference('phx:centos7', set(phx)).ref).toBe('phx:centos7:v4');
    expect(resolveReference('phx:centos7:latest', set(phx)).ref).toBe('phx:centos7:latest');
  });

  it("breaks timestamp ties like lago's max(): the first in the file wins", () => {
    expect(resolveReference('phx:tie', set(phx)).key.version).toBe('a');
  });

  it('allows name[:version] when exactly one repository is configured, and prefers a repository name for two parts', () => {
    expect(resolveReference('centos7', set(phx)).ref).toBe('phx:centos7:v4');
    expect(resolveReference('centos7:v1', set(phx)).ref).toBe('phx:centos7:v1');
    expect(resolveReference('other:centos7', set(phx, other)).ref).toBe('other:centos7:v9');
    expect(() => resolveReference('centos7', set(phx, other))).toThrow(
      expect.objectContaining({ code: 'BAD_REFERENCE' }),
    );
  });

  it.each([
    ['nope:centos7:v1', 'REPO_NOT_FOUND', { repository: 'nope' }],
    ['phx:nope', 'TEMPLATE_NOT_FOUND', { repository: 'phx', template: 'nope' }],
    ['phx:centos7:v2', 'VERSION_NOT_FOUND', { repository: 'phx', template: 'centos7', version: 'v2' }],
  ])('reports %s as %s', (text, code, fields) => {
    expect(() => resolveReference(text, set(phx, other))).toThrow(
      expect.objectContaining({ code, fields: expect.objectContaining(fields) }),
    );
  });

  it('says when no repository is configured', () => {
    expect(() => resolveReference('centos7', set())).toThrow(expect.objectContaining({ code: 'NO_REPOSITORIES' }));
  });
});

// The repository parser: lago's format exactly, broken entries isolated and reported with file and JSON path.
import { describe, expect, it } from 'vitest';
import { parseRepository, type Repository } from '../../src/index.js';
import { expandPath } from '../../src/repository/parse.js';

const options = { env: { HOME: '/home/u', TPL: '/srv/tpl' }, home: '/home/u', allowFileSources: true };

// The example from design.md §1, as lago wrote it.
const LAGO = {
  name: 'phx_repo',
  sources: {
    'ci-templates-vm': { type: 'http', args: { baseurl: 'http://templates.example.org/repo/' } },
    local: { type: 'file', args: { root: '$HOME/templates' } },
  },
  templates: {
    'el7.3-base': {
      versions: { v1: { source: 'ci-templates-vm', handle: 'el7.3-base', timestamp: 1483295849.820523 } },
    },
    centos7_host: {
      versions: {
        v1: { source: 'ci-templates-vm', handle: 'centos7/host/v1.qcow2', timestamp: 1428328144 },
        v4: { source: 'ci-templates-vm', handle: 'centos7/host/v4.qcow2', timestamp: 1438179094 },
      },
    },
  },
};

const version = (repo: Repository, t: string, v: string) => {
  const template = repo.templates.get(t);
  if (!template?.ok) throw new Error(`template ${t} broken`);
  return template.value.versions.get(v);
};

describe('parseRepository', () => {
  it("reads lago's repository format unchanged", () => {
    const repo = parseRepository(JSON.stringify(LAGO), 'repo.json', options);
    expect(repo.name).toBe('phx_repo');
    expect(repo.problems).toEqual([]);
    const v4 = version(repo, 'centos7_host', 'v4');
    expect(v4).toEqual({
      ok: true,
      value: {
        name: 'v4',
        handle: 'centos7/host/v4.qcow2',
        timestamp: 1438179094,
        source: { name: 'ci-templates-vm', type: 'http', baseurl: 'http://templates.example.org/repo/' },
      },
    });
    expect(version(repo, 'el7.3-base', 'v1')).toMatchObject({ ok: true, value: { timestamp: 1483295849.820523 } });
  });

  it('expands ~ and $VARS in file roots and resolves relative roots against the repository file', () => {
    expect(expandPath('$HOME/templates', options.env, options.home)).toBe('/home/u/templates');
    expect(expandPath('~/t', options.env, options.home)).toBe('/home/u/t');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a ${VAR} in a path is what expandPath expands
    expect(expandPath('${TPL}/x/$NOPE', options.env, options.home)).toBe('/srv/tpl/x/$NOPE');
    const repo = parseRepository(
      JSON.stringify({
        name: 'r',
        sources: { s: { type: 'file', args: { root: 'images' } } },
        templates: { t: { versions: { v: { source: 's', handle: 'a', timestamp: 1 } } } },
      }),
      '/etc/repos/r.json',
      options,
    );
    expect(version(repo, 't', 'v')).toMatchObject({
      ok: true,
      value: { source: { type: 'file', root: '/etc/repos/images' } },
    });
  });

  it('keeps broken versions and templates beside good ones, each failing only when asked for', () => {
    const text = JSON.stringify({
      name: 'r',
      sources: { good: { type: 'http', args: { baseurl: 'http://h/' } }, bad: { type: 'ftp', args: {} } },
      templates: {
        ok: { versions: { v1: { source: 'good', handle: 'a', timestamp: 1 } } },
        mixed: {
          versions: {
            v1: { source: 'good', handle: 'b', timestamp: 1 },
            v2: { source: 'ci-templates-vm:::', handle: 'b', timestamp: 2 },
            v3: { source: 'good', handle: '../../etc/passwd', timestamp: 3 },
            v4: { source: 'good', handle: 'c', timestamp: 'yesterday' },
            v5: { source: 'bad', handle: 'c', timestamp: 5 },
            v6: { source: 'good', handle: 'c', timestamp: 6, hash: 'md5:abc' },
          },
        },
        'bad/name': { versions: {} },
        novers: { versions: [] },
      },
    });
    const repo = parseRepository(text, 'repo.json', options);
    expect(version(repo, 'ok', 'v1')?.ok).toBe(true);
    expect(version(repo, 'mixed', 'v1')?.ok).toBe(true);
    const messages = Object.fromEntries(
      ['v2', 'v3', 'v4', 'v5', 'v6'].map((v) => {
        const entry = version(repo, 'mixed', v)!;
        if (entry.ok) throw new Error(`${v} should be broken`);
        expect(entry.error.code).toBe('ENTRY_BROKEN');
        return [v, entry.error];
      }),
    );
    expect(messages.v2!.message).toBe(
      'repo.json: templates.mixed.versions.v2.source: unknown source "ci-templates-vm:::"',
    );
    expect(messages.v2!.fields).toMatchObject({ file: 'repo.json', jsonPath: 'templates.mixed.versions.v2.source' });
    expect(messages.v3!.fields.jsonPath).toBe('templates.mixed.versions.v3.handle');
    expect(messages.v4!.fields.jsonPath).toBe('templates.mixed.versions.v4.timestamp');
    expect(messages.v5!.fields.jsonPath).toBe('sources.bad.type');
    expect(messages.v6!.fields.jsonPath).toBe('templates.mixed.versions.v6.hash');
    const badName = repo.templates.get('bad/name');
    expect(badName?.ok === false && badName.error.fields.jsonPath).toBe('templates["bad/name"]');
    const novers = repo.templates.get('novers');
    expect(novers?.ok === false && novers.error.fields.jsonPath).toBe('templates.novers.versions');
    expect(repo.problems.length).toBe(7);
  });

  it('reads the optional hash, compressed_hash, size and format fields', () => {
    const sha1 = 'a'.repeat(40);
    const sha256 = 'B'.repeat(64);
    const repo = parseRepository(
      JSON.stringify({
        name: 'r',
        sources: { s: { type: 'http', args: { baseurl: 'https://h/x' } } },
        templates: {
          t: {
            versions: {
              v: {
                source: 's',
                handle: 'h',
                timestamp: 1,
                hash: `sha1:${sha1}`,
                compressed_hash: `sha256:${sha256}`,
                size: 1024,
                format: 'qcow2',
              },
            },
          },
        },
      }),
      'r.json',
      options,
    );
    expect(version(repo, 't', 'v')).toMatchObject({
      ok: true,
      value: {
        hash: { algorithm: 'sha1', hex: sha1 },
        compressedHash: { algorithm: 'sha256', hex: 'b'.repeat(64) },
        size: 1024,
        format: 'qcow2',
      },
    });
  });

  it('reads caibx_hash and caibx_size, and keeps a version with bad ones broken', () => {
    const sha256 = 'c'.repeat(64);
    const entry = (extra: Record<string, unknown>) =>
      parseRepository(
        JSON.stringify({
          name: 'r',
          sources: { s: { type: 'http', args: { baseurl: 'https://h/x' } } },
          templates: { t: { versions: { v: { source: 's', handle: 'h', timestamp: 1, ...extra } } } },
        }),
        'r.json',
        options,
      );
    expect(version(entry({ caibx_hash: `sha256:${sha256}`, caibx_size: 4104 }), 't', 'v')).toMatchObject({
      ok: true,
      value: { caibx: { digest: { algorithm: 'sha256', hex: sha256 }, size: 4104 } },
    });
    for (const bad of [{ caibx_hash: 'nope' }, { caibx_hash: `sha256:${sha256}`, caibx_size: -1 }, { caibx_size: 10 }])
      expect(version(entry(bad), 't', 'v')).toMatchObject({ ok: false, error: { code: 'ENTRY_BROKEN' } });
  });

  it('refuses a whole repository only when the file itself is unusable', () => {
    const cases: Array<[string, string]> = [
      ['{not json', '(invalid JSON)'],
      ['[]', '(root)'],
      ['{"templates":{}}', 'name'],
      ['{"name":"a/b"}', 'name'],
      ['{"name":"r","templates":[]}', 'templates'],
      ['{"name":"r","sources":"x"}', 'sources'],
    ];
    for (const [text, path] of cases) {
      let error: unknown;
      try {
        parseRepository(text, 'r.json', options);
      } catch (e) {
        error = e;
      }
      expect(error).toMatchObject({ code: 'REPO_INVALID', fields: { file: 'r.json' } });
      if (path !== '(invalid JSON)') expect((error as { fields: { jsonPath: string } }).fields.jsonPath).toBe(path);
    }
  });

  it('does not let a repository loaded over HTTP declare file sources or non-http base URLs', () => {
    const text = JSON.stringify({
      name: 'r',
      sources: { f: { type: 'file', args: { root: '/etc' } }, g: { type: 'http', args: { baseurl: 'ftp://h/' } } },
      templates: {
        a: { versions: { v: { source: 'f', handle: 'passwd', timestamp: 1 } } },
        b: { versions: { v: { source: 'g', handle: 'x', timestamp: 1 } } },
      },
    });
    const repo = parseRepository(text, 'http://h/r.json', { ...options, allowFileSources: false });
    expect(version(repo, 'a', 'v')).toMatchObject({
      ok: false,
      error: { code: 'ENTRY_BROKEN', fields: { jsonPath: 'sources.f.type' } },
    });
    expect(version(repo, 'b', 'v')).toMatchObject({
      ok: false,
      error: { code: 'ENTRY_BROKEN', fields: { jsonPath: 'sources.g.args.baseurl' } },
    });
  });
});

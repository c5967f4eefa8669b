// The house rules of src/, checked on the real files: no import cycle, layers only import downwards, small files with a purpose line.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

/** Every part below the entry points: what the CLI and the public API's entries may use. */
const EVERY_LAYER = [
  'errors.ts',
  'util',
  'http',
  'context.ts',
  'version.ts',
  'repository',
  'providers',
  'store',
  'fetch',
  'publish',
  'manage',
  'config',
  'jobs',
  'server',
  'status',
  'oci',
  'trust',
  'lockfile',
  'chunks',
  'catalogues',
];

/** Which top-level parts of src/ each part may import (docs/architecture.md). */
const MAY_USE: Record<string, string[]> = {
  'errors.ts': [],
  'version.ts': [],
  util: ['errors.ts'],
  http: ['errors.ts', 'util', 'version.ts'],
  trust: ['errors.ts', 'util'],
  chunks: ['errors.ts'],
  catalogues: ['errors.ts', 'repository'],
  'context.ts': ['http', 'version.ts', 'trust'],
  repository: ['errors.ts', 'util', 'http', 'context.ts', 'trust'],
  oci: ['errors.ts', 'util', 'http'],
  providers: ['errors.ts', 'util', 'http', 'repository', 'oci'],
  store: ['errors.ts', 'util', 'repository', 'trust'],
  fetch: ['errors.ts', 'util', 'http', 'context.ts', 'version.ts', 'repository', 'providers', 'store', 'oci', 'chunks'],
  config: ['errors.ts', 'util', 'http', 'repository', 'trust'],
  jobs: ['errors.ts', 'util', 'context.ts', 'repository', 'store', 'fetch', 'manage', 'oci', 'trust'],
  lockfile: ['errors.ts', 'util', 'context.ts', 'repository', 'providers', 'store', 'fetch', 'manage'],
  status: ['errors.ts', 'util', 'http', 'context.ts', 'repository', 'providers', 'trust'],
  publish: [
    'errors.ts',
    'util',
    'context.ts',
    'repository',
    'fetch',
    'oci',
    'providers',
    'trust',
    'chunks',
    'catalogues',
  ],
  manage: [
    'errors.ts',
    'util',
    'context.ts',
    'version.ts',
    'repository',
    'providers',
    'store',
    'fetch',
    'publish',
    'oci',
    'trust',
    'catalogues',
  ],
  server: [
    'errors.ts',
    'util',
    'http',
    'context.ts',
    'version.ts',
    'repository',
    'providers',
    'store',
    'fetch',
    'publish',
    'manage',
    'config',
    'jobs',
    'status',
    'oci',
    'trust',
    'catalogues',
  ],
  cli: EVERY_LAYER,
  api: EVERY_LAYER,
  'index.ts': EVERY_LAYER,
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Every relative import of a file: static, type-only, re-exports and dynamic `import()`. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((match) =>
    resolve(dirname(file), match[1]!.replace(/\.js$/, '.ts')),
  );
}

const part = (file: string) => relative(SRC, file).split('/')[0]!;
const files = sourceFiles(SRC);
const graph = new Map(files.map((file) => [file, importsOf(file)]));

describe('src/ layout', () => {
  it('imports only files that exist', () => {
    expect([...graph.values()].flat().length).toBeGreaterThan(300);
    const missing = [...graph].flatMap(([file, deps]) =>
      deps.filter((dep) => !graph.has(dep)).map((dep) => `${relative(SRC, file)} -> ${relative(SRC, dep)}`),
    );
    expect(missing).toEqual([]);
  });

  it('has no import cycle', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(SRC, f)).join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const dep of graph.get(file) ?? []) visit(dep, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('imports only from the layers below (docs/architecture.md)', () => {
    const wrong = [...graph].flatMap(([file, deps]) => {
      const from = part(file);
      const allowed = MAY_USE[from];
      if (!allowed) return [`${relative(SRC, file)}: ${from} is not a known part of src/`];
      return deps
        .filter((dep) => part(dep) !== from && !allowed.includes(part(dep)))
        .map((dep) => `${relative(SRC, file)} -> ${relative(SRC, dep)}`);
    });
    expect(wrong).toEqual([]);
  });

  // 400 formatted lines (Biome, 120 columns) is the old rule of 300 packed ones: formatting made the tree 32 % longer.
  it("has docs/architecture.md's layer table say what these rules say", () => {
    const doc = readFileSync(resolve(SRC, '../docs/architecture.md'), 'utf8');
    const table: Record<string, string[]> = {};
    for (const match of doc.matchAll(/^\| `([a-z.-]+?)\/?`(?: \(package root\))? \|.*\| ([^|]*) \|$/gm)) {
      const uses = match[2]!.trim();
      table[match[1]!] = uses === 'nothing' ? [] : uses.split(', ');
    }
    // The may-use column names errors.ts, version.ts and context.ts without their .ts; ui/ is outside src/.
    const named = (key: string) => key.replace(/\.ts$/, '');
    const rules = Object.fromEntries(Object.entries(MAY_USE).map(([key, uses]) => [key, uses.map(named)]));
    delete table.ui;
    expect(table).toEqual(rules);
  });

  it('keeps every file under 400 formatted lines, opening with a one-line purpose comment', () => {
    const long = files
      .filter((file) => readFileSync(file, 'utf8').split('\n').length > 400)
      .map((file) => relative(SRC, file));
    const unexplained = files
      .filter((file) => !/^\/\/ \S.{10,}\n/.test(readFileSync(file, 'utf8')))
      .map((file) => relative(SRC, file));
    expect(long).toEqual([]);
    expect(unexplained).toEqual([]);
  });

  it('runs no code from strings: worker threads are typed modules built with the rest (src/fetch/workers/)', () => {
    const fromStrings = files
      .filter((file) => /\beval:\s*true|\bnew Function\(|\beval\(/.test(readFileSync(file, 'utf8')))
      .map((file) => relative(SRC, file));
    expect(fromStrings).toEqual([]);
  });

  it('has no unused file, export or dependency (knip, knip.json)', async () => {
    const { execa } = await import('execa');
    const knip = await execa(resolve(SRC, '../node_modules/.bin/knip'), ['--no-progress'], {
      cwd: resolve(SRC, '..'),
      reject: false,
      timeout: 60_000,
    });
    expect(knip.stdout).toBe('');
    expect(knip.exitCode).toBe(0);
  }, 90_000);
});

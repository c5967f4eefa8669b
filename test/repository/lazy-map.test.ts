// Templates parse when first read: a hit parses one template, and every other read sees what an eager parse gives.
import { describe, expect, it } from 'vitest';
import { parseRepository } from '../../src/index.js';
import { LazyMap, extend } from '../../src/repository/lazy-map.js';

const options = { env: {}, home: '/home/u', allowFileSources: true };

describe('LazyMap', () => {
  it('parses a value once, when first read, and keeps the raw order whatever the reading order', () => {
    const parsed: string[] = [];
    const map = new LazyMap<string, number>(
      [
        ['a', '1'],
        ['b', '2'],
        ['c', '3'],
      ],
      (key, raw) => {
        parsed.push(key);
        return Number(raw);
      },
    );
    expect(map.size).toBe(3);
    expect(map.has('b')).toBe(true);
    expect(parsed).toEqual([]);
    expect(map.get('c')).toBe(3);
    expect(map.get('c')).toBe(3);
    expect(parsed).toEqual(['c']);
    expect([...map]).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    expect(parsed).toEqual(['c', 'a', 'b']);
    expect(new Map(map).get('b')).toBe(2);
  });

  it('reads, sets and deletes like a Map', () => {
    const map = new LazyMap<string, number>(
      [
        ['a', 1],
        ['b', 2],
      ],
      (_key, raw) => raw as number,
    );
    map.set('a', 10);
    expect(map.delete('b')).toBe(true);
    map.set('z', 26);
    const seen: Array<[string, number]> = [];
    map.forEach((value, key) => {
      seen.push([key, value]);
    });
    expect(seen).toEqual([
      ['a', 10],
      ['z', 26],
    ]);
    expect([...map.values()]).toEqual([10, 26]);
    expect(map.get('b')).toBeUndefined();
  });

  it('extend keeps a getter a getter, where a spread would read it', () => {
    let reads = 0;
    const base = {
      name: 'r',
      get problems() {
        reads += 1;
        return ['p'];
      },
    };
    const copy = extend(base, { text: 'x' });
    expect(reads).toBe(0);
    expect(copy).toMatchObject({ name: 'r', text: 'x' });
    expect(copy.problems).toEqual(['p']);
  });
});

describe('a repository of many versions', () => {
  const repo = {
    name: 'big',
    sources: { s: { type: 'http', args: { baseurl: 'http://h/' } } },
    templates: {
      wanted: { versions: { v1: { source: 's', handle: 'w', timestamp: 1 } } },
      many: {
        versions: Object.fromEntries(
          Array.from({ length: 5000 }, (_, i) => [`v${i}`, { source: 's', handle: `m/${i}`, timestamp: i }]),
        ),
      },
      broken: { versions: { v1: { source: 'nowhere', handle: 'b', timestamp: 1 } } },
    },
  };

  it('a broken template elsewhere does not stop reading the wanted one, and problems still lists it', () => {
    const parsed = parseRepository(JSON.stringify(repo), 'big.json', options);
    expect(parsed.templates.get('wanted')).toMatchObject({ ok: true, value: { name: 'wanted' } });
    expect([...parsed.templates.keys()]).toEqual(['wanted', 'many', 'broken']);
    expect(parsed.problems).toEqual([expect.stringContaining('unknown source "nowhere"')]);
    const many = parsed.templates.get('many');
    expect(many?.ok && many.value.versions.size).toBe(5000);
  });
});

// The pure parts of index: names from paths and metadata, globs, and sizes on the command line.
import { describe, expect, it } from 'vitest';
import { matchesGlob, selectedByGlobs } from '../../src/publish/glob.js';
import { nameImage, namingFromPath } from '../../src/publish/naming.js';
import { parseSize } from '../../src/util/size.js';

describe('naming', () => {
  it('reads NAME/VERSION/FILE and NAME-VERSION.EXT', () => {
    expect(namingFromPath('fedora/33/disk.raw')).toEqual({ name: 'fedora', version: '33' });
    expect(namingFromPath('vendor/el8/v2/root.qcow2')).toEqual({ name: 'el8', version: 'v2' });
    expect(namingFromPath('centos-stream-9.qcow2')).toEqual({ name: 'centos-stream', version: '9' });
    expect(namingFromPath('alpine-3.19.1')).toEqual({ name: 'alpine', version: '3.19.1' });
    expect(namingFromPath('el8-v2.img')).toEqual({ name: 'el8', version: 'v2' });
    expect(namingFromPath('disk.raw')).toBeUndefined();
    expect(namingFromPath('dir/disk-1.raw')).toEqual({ name: 'disk', version: '1' });
  });

  it('prefers metadata name and version, and refuses invalid ones instead of guessing', () => {
    expect(nameImage('fedora/33/disk.raw', { name: 'f', version: '1' })).toEqual({
      name: 'f',
      version: '1',
      from: 'metadata',
    });
    expect(nameImage('fedora/33/disk.raw', {})).toEqual({ name: 'fedora', version: '33', from: 'path' });
    expect(nameImage('x-1.raw', { name: 'a:b', version: '1' })).toHaveProperty('problem');
    expect(nameImage('x-1.raw', { name: 1, version: 2 })).toHaveProperty('problem');
    expect(nameImage('disk.raw', {})).toHaveProperty('problem');
  });
});

describe('globs', () => {
  it('keeps * and ? inside a segment, lets ** span them, and matches bare globs against the file name', () => {
    expect(matchesGlob('a/b/c.raw', 'a/*/c.raw')).toBe(true);
    expect(matchesGlob('a/b/d/c.raw', 'a/*/c.raw')).toBe(false);
    expect(matchesGlob('a/b/d/c.raw', 'a/**/c.raw')).toBe(true);
    expect(matchesGlob('a/c.raw', 'a/**/c.raw')).toBe(true);
    expect(matchesGlob('x/y/c.qcow2', '*.qcow2')).toBe(true);
    expect(matchesGlob('x/y/c.qcow2', 'c.qcow?')).toBe(true);
    expect(matchesGlob('x/c1.raw', 'c[0-9].raw')).toBe(true);
    expect(matchesGlob('x/ca.raw', 'c[!0-9].raw')).toBe(true);
    expect(matchesGlob('a.b', 'a?b')).toBe(true);
    expect(matchesGlob('a+b', 'a+b')).toBe(true);
    expect(selectedByGlobs('a/1/x.raw', [], ['a/**'])).toBe(false);
    expect(selectedByGlobs('a/1/x.raw', ['*.qcow2'], [])).toBe(false);
    expect(selectedByGlobs('a/1/x.raw', [], [])).toBe(true);
  });
});

describe('sizes', () => {
  it('reads bytes and binary units', () => {
    expect(parseSize('1048576')).toBe(2 ** 20);
    expect(parseSize('16M')).toBe(16 * 2 ** 20);
    expect(parseSize('16MiB')).toBe(16 * 2 ** 20);
    expect(parseSize('1.5G')).toBe(1.5 * 2 ** 30);
    expect(parseSize('2 TB')).toBe(2 * 2 ** 40);
    expect(parseSize('512b')).toBe(512);
    expect(parseSize('lots')).toBeUndefined();
    expect(parseSize('-1M')).toBeUndefined();
  });
});

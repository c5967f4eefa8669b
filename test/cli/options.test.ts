// The shared options before the command (git-style), moved after it for the command's own parser (pure).
import { describe, expect, it } from 'vitest';
import { commandFirst } from '../../src/cli/options.js';

describe('commandFirst', () => {
  it.each([
    [
      ['--store', '/s', 'list', '--stored'],
      ['list', '--store', '/s', '--stored'],
    ],
    [
      ['--config', 'c.json', '--offline', 'status', 'ci'],
      ['status', '--config', 'c.json', '--offline', 'ci'],
    ],
    [
      ['--repo', 'a.json', '--repo', 'b.json', 'fetch', 'x'],
      ['fetch', '--repo', 'a.json', '--repo', 'b.json', 'x'],
    ],
    [
      ['--store=/s', 'du'],
      ['du', '--store=/s'],
    ],
    [
      ['fetch', '--store', '/s', 'x'],
      ['fetch', '--store', '/s', 'x'],
    ],
    [
      ['--bogus', 'fetch'],
      ['fetch', '--bogus'],
    ],
    [['--version'], ['--version']],
    [['--help'], ['--help']],
    [
      ['--store', '/s'],
      ['--store', '/s'],
    ],
    [[], []],
  ])('%j -> %j', (argv, expected) => {
    expect(commandFirst(argv)).toEqual(expected);
  });
});

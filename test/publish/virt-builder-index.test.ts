// templates index writes virt-builder's index of the directory, read by the real virt-builder (guestfs-tools).
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexDirectory } from '../../src/api/publish.js';
import { createContext } from '../../src/index.js';
import { TOOL_PATH, makeDisk } from '../helpers/images.js';

let dir: string;
let www: string;
let disks: { a: string; b1: string; b2: string };

const index = () =>
  indexDirectory(www, {
    name: 'pub',
    chunkSizes: false,
    formats: ['xz'],
    context: createContext({ env: { PATH: TOOL_PATH } }),
  });

/** The real virt-builder with only this index as its source (a local path, as guestfs-tools' own tests use). */
async function virtBuilder(args: string[]) {
  const config = join(dir, 'vb-config', 'virt-builder', 'repos.d');
  await mkdir(config, { recursive: true });
  await writeFile(join(config, 'pub.conf'), `[pub]\nuri=${join(www, 'virt-builder.index')}\n`);
  return execa('virt-builder', ['--no-check-signature', ...args], {
    env: {
      PATH: TOOL_PATH,
      HOME: dir,
      XDG_CONFIG_HOME: '',
      VIRT_BUILDER_DIRS: join(dir, 'vb-config'),
      XDG_CACHE_HOME: join(dir, 'vb-cache'),
    },
    extendEnv: false,
    reject: false,
    timeout: 120_000,
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'templates-vb-'));
  www = join(dir, 'www');
  disks = {
    a: await makeDisk(join(dir, 'a.raw'), { sizeMiB: 8, dataKiB: 512, label: 'a' }),
    b1: await makeDisk(join(dir, 'b1.raw'), { sizeMiB: 8, dataKiB: 512, label: 'b1' }),
    b2: await makeDisk(join(dir, 'b2.raw'), { sizeMiB: 8, dataKiB: 512, label: 'b2' }),
  };
  for (const [rel, disk, seconds] of [
    ['alpha/v1/disk.raw', disks.a, 1_700_000_000],
    ['beta/v1/disk.raw', disks.b1, 1_700_000_000],
    ['beta/v2/disk.raw', disks.b2, 1_700_000_100],
  ] as const) {
    await mkdir(join(www, rel, '..'), { recursive: true });
    await copyFile(disk, join(www, rel));
    await utimes(join(www, rel), seconds, seconds);
  }
  await writeFile(
    join(www, 'alpha/v1/disk.raw.metadata'),
    JSON.stringify({ name: 'alpha', version: 'v1', arch: 'aarch64', osinfo: 'debian12' }),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('templates index: virt-builder.index', () => {
  it('lists the newest version of each template, with the metadata it has', async () => {
    const summary = await index();
    expect(summary.problems).toEqual([]);
    expect(summary.skipped).toEqual([]);
    const text = await readFile(join(www, 'virt-builder.index'), 'utf8');
    expect(text.match(/^\[[^\]]+\]$/gm)).toEqual(['[pub.alpha]', '[pub.beta]']);
    expect(text).toMatch(/^name=pub:beta:v2$/m);
    expect(text).toMatch(/^osinfo=debian12$/m);
    expect(text).toMatch(/^arch=aarch64$/m);
    expect(text).toMatch(/^file=beta\/v2\/disk\.raw\.xz$/m);
  });

  it('virt-builder lists it and caches each template: the SHA-512 matches and the .xz unpacks to the image', async () => {
    const listed = await virtBuilder(['--list']);
    expect(listed.stderr).toBe('');
    expect(listed.stdout).toMatch(/^pub\.alpha\s+aarch64\s+pub:alpha:v1$/m);
    expect(listed.stdout).toMatch(/^pub\.beta\s+x86_64\s+pub:beta:v2$/m);
    const cached = await virtBuilder(['--cache-all-templates']);
    expect(cached.exitCode).toBe(0);
    const cache = join(dir, 'vb-cache', 'virt-builder');
    const beta = (await readdir(cache)).find((name) => name.startsWith('pub.beta.'))!;
    const text = await readFile(join(www, 'virt-builder.index'), 'utf8');
    const section = text.slice(text.indexOf('[pub.beta]'));
    const sum = /^checksum\[sha512\]=([0-9a-f]+)$/m.exec(section)![1];
    expect(
      createHash('sha512')
        .update(await readFile(join(cache, beta)))
        .digest('hex'),
    ).toBe(sum);
    const unpacked = await execa('xz', ['-dc', join(cache, beta)], { encoding: 'buffer' });
    expect(Buffer.from(unpacked.stdout).equals(await readFile(disks.b2))).toBe(true);
  });

  it('is incremental: an unchanged directory leaves the index as it was, each .xz SHA-512 kept in the state', async () => {
    const before = await stat(join(www, 'virt-builder.index'));
    await index();
    const after = await stat(join(www, 'virt-builder.index'));
    expect(after.mtimeMs).toBe(before.mtimeMs);
    const state = JSON.parse(await readFile(join(www, '.templates-index.state'), 'utf8'));
    const hashes = Object.values((state.images ?? {}) as Record<string, { xzSha512?: string }>).filter(
      (image) => image.xzSha512,
    );
    expect(hashes.length).toBe(2);
  });
});

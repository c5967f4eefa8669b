// Build real disk images at test time: ext4 raw disks (mkfs.ext4 -d), qcow2 (qemu-img) xz and zstd variants.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';

export const TOOL_PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin`;
const run = (file: string, args: string[]) => execa(file, args, { env: { PATH: TOOL_PATH } });

/** A raw disk of `sizeMiB` with an ext4 filesystem holding `dataKiB` of random data and a marker file. */
export async function makeDisk(
  out: string,
  options: { sizeMiB?: number; dataKiB?: number; label?: string } = {},
): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'templates-fsroot-'));
  try {
    await mkdir(join(root, 'etc'));
    await writeFile(join(root, 'etc', 'motd'), `template ${options.label ?? 'test'}\n`);
    await writeFile(join(root, 'data.bin'), randomBytes((options.dataKiB ?? 512) * 1024));
    await mkdir(dirname(out), { recursive: true });
    await run('truncate', ['-s', `${options.sizeMiB ?? 8}M`, out]);
    await run('mkfs.ext4', ['-q', '-F', '-L', (options.label ?? 'test').slice(0, 16), '-d', root, out]);
    return out;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/**
 * The two disks the process tests share: `disk` (8 MiB, 512 KiB of data) and `big` (16 MiB, 6 MiB of random data:
 * about 6 MiB of xz, three seconds through nginx's 2 MB/s /slow/ location, long enough to act mid-download).
 */
export async function smallAndBigDisks(dir: string): Promise<{ disk: string; big: string }> {
  const [disk, big] = await Promise.all([
    makeDisk(join(dir, 'a.raw'), { sizeMiB: 8, dataKiB: 512 }),
    makeDisk(join(dir, 'big.raw'), { sizeMiB: 16, dataKiB: 6 * 1024 }),
  ]);
  return { disk, big };
}

export async function toQcow2(raw: string, out: string, extra: string[] = []): Promise<string> {
  await mkdir(dirname(out), { recursive: true });
  await run('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', ...extra, raw, out]);
  return out;
}

/** `xz -T0` (multi-block) of `file` into `out`, keeping `file`. */
export async function xzFile(file: string, out = `${file}.xz`): Promise<string> {
  const { stdout } = await execa('xz', ['-T0', '-3', '-c', file], { encoding: 'buffer', env: { PATH: TOOL_PATH } });
  await writeFile(out, stdout);
  return out;
}

/** `zstd -3 --long=27` of `file` (what index writes, at a level a test can afford). */
async function zstFile(file: string, out = `${file}.zst`): Promise<string> {
  await execa('zstd', ['-q', '-3', '--long=27', '-f', '-o', out, file], { env: { PATH: TOOL_PATH } });
  return out;
}

export async function digestOf(file: string, algorithm: 'sha1' | 'sha256' | 'sha512' = 'sha1'): Promise<string> {
  const hash = createHash(algorithm);
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

export interface PublishOptions {
  /** Serve `<handle>.xz` (default true). */
  xz?: boolean;
  /** Also serve `<handle>.zst` (default false); list it with zstFields(). */
  zst?: boolean;
  /** Also (or only, with xz false) serve the plain `<handle>` (default: !xz). */
  plain?: boolean;
  /** Contents of `<handle>.hash`: default SHA-1 hex of the image; null for no hash file. */
  hashText?: string | null;
  /** Contents of `<handle>.metadata`; null for none. */
  metadata?: string | null;
}

/** Lays out one version below a source root as lago published it. Returns the image digests. */
export async function publishImage(root: string, handle: string, image: string, options: PublishOptions = {}) {
  const target = join(root, handle);
  await mkdir(dirname(target), { recursive: true });
  const xz = options.xz ?? true;
  const plain = options.plain ?? !xz;
  if (xz) await xzFile(image, `${target}.xz`);
  if (plain) await copyFile(image, target);
  if (options.zst) await zstFile(image, `${target}.zst`);
  const sha1 = await digestOf(image, 'sha1');
  const hashText = options.hashText === undefined ? sha1 : options.hashText;
  if (hashText !== null) await writeFile(`${target}.hash`, hashText);
  const metadata =
    options.metadata === undefined ? JSON.stringify({ distro: 'test', arch: 'x86_64' }) : options.metadata;
  if (metadata !== null) await writeFile(`${target}.metadata`, metadata);
  return {
    sha1,
    sha256: await digestOf(image, 'sha256'),
    xzSha256: xz ? await digestOf(`${target}.xz`, 'sha256') : undefined,
    zst: options.zst
      ? {
          zst_hash: `sha256:${await digestOf(`${target}.zst`, 'sha256')}`,
          zst_size: (await stat(`${target}.zst`)).size,
        }
      : undefined,
  };
}

/**
 * A version pair for delta tests: v1 a disk from makeDisk, v2 the same with `changedKiB` of random bytes written at
 * `atMiB` (most chunks shared). Both in `dir` as v1.raw and v2.raw.
 */
export async function makeVersionPair(
  dir: string,
  options: { sizeMiB: number; dataKiB: number; changedKiB: number; atMiB: number },
): Promise<{ v1: string; v2: string }> {
  const v1 = await makeDisk(join(dir, 'v1.raw'), { sizeMiB: options.sizeMiB, dataKiB: options.dataKiB, label: 'v1' });
  const v2 = join(dir, 'v2.raw');
  await copyFile(v1, v2);
  const file = await open(v2, 'r+');
  await file.write(randomBytes(options.changedKiB * 1024), 0, options.changedKiB * 1024, options.atMiB * 1024 * 1024);
  await file.close();
  return { v1, v2 };
}

/** Copies the pair into `root` as tpl/v1/disk.raw and tpl/v2/disk.raw, as a publisher lays out versions. */
export async function placeVersions(root: string, pair: { v1: string; v2: string }): Promise<void> {
  for (const [version, image] of [
    ['v1', pair.v1],
    ['v2', pair.v2],
  ] as const) {
    await mkdir(join(root, 'tpl', version), { recursive: true });
    await copyFile(image, join(root, 'tpl', version, 'disk.raw'));
  }
}

// The xz and zstd commands for publishing: a piped filter (compress or decompress), and what `xz --list` says of a file.
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { findExecutable } from '../context.js';
import { TemplatesError, abortError } from '../errors.js';
import { toolMissing, type Tool } from '../util/tools.js';

/** 16 MiB: big enough to compress well, small enough that a 2 GiB image decodes on every core. */
const DEFAULT_BLOCK_BYTES = 16 * 1024 * 1024;

export interface CompressOptions {
  /** 0: one per core. */
  threads: number;
  blockBytes: number;
  /** xz preset, 0–9. */
  level: number;
}

/** What callers may leave out: threads default 0 (one per core), blocks 16 MiB, preset 6. */
export type CompressChoices = Partial<CompressOptions>;

export function compressOptions(choices: CompressChoices): CompressOptions {
  return {
    threads: choices.threads ?? 0,
    blockBytes: choices.blockBytes ?? DEFAULT_BLOCK_BYTES,
    level: choices.level ?? 6,
  };
}

/**
 * Arguments that always give a multi-block file with sizes in the block headers, which is what lets xz decode it
 * on several threads. `-T1` would be xz's single-threaded mode, whose blocks carry no sizes; `-T+1` is the
 * multi-threaded encoder with one thread.
 */
export function compressArgs(options: CompressOptions): string[] {
  const threads = options.threads === 1 ? '+1' : String(options.threads);
  return [
    `-T${threads}`,
    `--block-size=${options.blockBytes}`,
    `-${options.level}`,
    '--compress',
    '--stdout',
    '--quiet',
    '--no-warn',
  ];
}

export const DECOMPRESS_ARGS = ['-T0', '--decompress', '--stdout', '--quiet', '--no-warn'];

/** zstd's default level for published images: slow to write once, same size as xz -6, four times faster to decode. */
export const DEFAULT_ZSTD_LEVEL = 19;
/** A 128 MiB window: finds repeats across a disk image; still within zstd's default decoding memory limit. */
const ZSTD_WINDOW_LOG = 27;

/** zstd at `level` (1–22) with the long window, on every core, with its content checksum. */
export function zstdArgs(level: number): string[] {
  return [
    ...(level > 19 ? ['--ultra'] : []),
    `-${level}`,
    `--long=${ZSTD_WINDOW_LOG}`,
    '-T0',
    '--check',
    '--compress',
    '--stdout',
    '--quiet',
    '--no-progress',
  ];
}

/** The xz command, and zstd when a `.zst` is wanted, for `command` (index, export); TOOL_MISSING names what to install. */
export async function findEncoders(
  command: string,
  path: string | undefined,
  wantZst: boolean,
): Promise<{ xz: string; zstd?: string }> {
  const xz = await findExecutable('xz', path);
  if (!xz) throw toolMissing('xz', `templates ${command} needs the xz command`);
  if (!wantZst) return { xz };
  const zstd = await findExecutable('zstd', path);
  if (!zstd)
    throw toolMissing(
      'zstd',
      `templates ${command} writes .zst files and needs the zstd command`,
      'or give --formats xz',
    );
  return { xz, zstd };
}

export interface Filter {
  stdin: Writable;
  stdout: Readable;
  /** Settles when xz exits: rejects with COMPRESS_FAILED / DECODE_FAILED (or ABORTED) unless it exited 0. */
  done: Promise<void>;
  kill(): void;
}

/** Starts xz (or zstd: `tool`) with piped stdin and stdout. `where` names the input in error messages. */
export function spawnFilter(
  xz: string,
  args: string[],
  where: string,
  signal: AbortSignal | undefined,
  tool: Tool = 'xz',
): Filter {
  const decompress = args.includes('--decompress');
  const child = spawn(xz, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(signal ? { signal, killSignal: 'SIGKILL' } : {}),
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    if (stderr.length < 8192) stderr += text;
  });
  // A write after xz died (EPIPE) is reported through `done`, which names the real reason.
  child.stdin!.on('error', () => {});
  const failed = (detail: string, cause?: unknown) =>
    decompress
      ? new TemplatesError(
          'DECODE_FAILED',
          `${where}: ${tool} data is corrupt or truncated: ${detail}`,
          { path: where, tool, hint: 'replace the file with a good copy' },
          { cause },
        )
      : new TemplatesError(
          'COMPRESS_FAILED',
          `${where}: ${tool} could not compress it: ${detail}`,
          { path: where, tool, hint: `check the free memory and the ${tool} installation` },
          { cause },
        );
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (error) => {
      if (signal?.aborted) return reject(abortError(signal));
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(toolMissing(tool, `cannot run ${xz}`, undefined, error));
      }
      reject(failed(error.message, error));
    });
    child.once('close', (code, killedBy) => {
      if (code === 0) return resolve();
      if (signal?.aborted) return reject(abortError(signal));
      reject(
        failed(
          stderr
            .trim()
            .split('\n')
            .pop()
            ?.replace(/^(xz|zstd): \(?stdin\)? ?: ?/, '') || (killedBy ? `killed by ${killedBy}` : `exit ${code}`),
        ),
      );
    });
  });
  done.catch(() => undefined);
  return { stdin: child.stdin!, stdout: child.stdout!, done, kill: () => void child.kill('SIGKILL') };
}

export interface XzListing {
  blocks: number;
  uncompressedBytes: number;
  /** Every block header records its sizes: xz can decode the file on several threads. */
  sizesInHeaders: boolean;
}

/** `xz --robot --list -vv`: reads only the index and block headers, never decodes. DECODE_FAILED when it is not valid xz. */
export async function listXz(xz: string, path: string, signal: AbortSignal | undefined): Promise<XzListing> {
  const { execa } = await import('execa');
  const result = await execa(xz, ['--robot', '--list', '-vv', path], {
    reject: false,
    ...(signal ? { cancelSignal: signal } : {}),
  });
  if (signal?.aborted) throw abortError(signal);
  if (result.exitCode !== 0) {
    throw new TemplatesError(
      'DECODE_FAILED',
      `${path}: not a valid xz file: ${String(result.stderr).trim().split('\n').pop() ?? ''}`,
      { path, tool: 'xz', hint: 'replace the file with a good copy' },
    );
  }
  const lines = String(result.stdout)
    .split('\n')
    .map((line) => line.split('\t'));
  const blocks = lines.filter((fields) => fields[0] === 'block');
  const totals = lines.find((fields) => fields[0] === 'totals');
  return {
    blocks: blocks.length,
    uncompressedBytes: Number(totals?.[4] ?? 0),
    // -vv's 13th column (flags) is "cu" when the header holds the compressed and uncompressed sizes, "--" when not.
    sizesInHeaders: blocks.length > 0 && blocks.every((fields) => fields[12] === 'cu'),
  };
}

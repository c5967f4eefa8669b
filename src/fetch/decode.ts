// Decoding: the system `xz -T0 -dc` or `zstd -dc --sparse` as a child process; lzma-native only where no xz binary exists.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { Decoder } from '../context.js';
import { TemplatesError, abortError, isTemplatesError } from '../errors.js';
import { toolMissing, type Tool } from '../util/tools.js';

/** The compressions a source may serve, by suffix. */
export type Compression = 'xz' | 'zst';

/**
 * xz -T0: one thread per core; xz uses them only on files compressed in several blocks. zstd decodes on one
 * thread (fast enough to keep up with the disk); --sparse seeks over zero runs even through a file descriptor.
 * zstd's default memory limit (128 MiB) admits `--long=27` and refuses larger windows: a hostile frame fails.
 */
const ARGS: Record<Compression, (threads: number) => string[]> = {
  xz: (threads) => [`-T${threads}`, '--decompress', '--stdout', '--quiet', '--no-warn'],
  zst: () => ['--decompress', '--stdout', '--quiet', '--sparse', '--no-progress'],
};
const TOOL: Record<Compression, Tool> = { xz: 'xz', zst: 'zstd' };
/** Enough of xz's stderr for the message; the rest is dropped. */
const STDERR_LIMIT = 8 * 1024;

export function decodeFailed(
  error: unknown,
  where: string,
  signal: AbortSignal | undefined,
  compression: Compression = 'xz',
): TemplatesError {
  if (signal?.aborted) return abortError(signal);
  if (isTemplatesError(error)) return error;
  const err = error as { message?: string };
  return new TemplatesError(
    'DECODE_FAILED',
    `${where}: ${compression} data is corrupt or truncated: ${err.message ?? 'decoder failed'}`,
    {
      url: where,
      tool: TOOL[compression],
      hint: 'the download or the file on the server is damaged; try again, or ask the repository owner',
    },
    { cause: error },
  );
}

/** lzma-native is optional; it loads only when chosen. */
function loadLzmaNative(): { createDecompressor(): Duplex } | undefined {
  try {
    return createRequire(import.meta.url)('lzma-native') as { createDecompressor(): Duplex };
  } catch {
    return undefined;
  }
}

export function checkDecoder(decoder: Decoder | undefined): Decoder {
  if (decoder && (decoder.kind === 'xz' || loadLzmaNative())) return decoder;
  throw toolMissing('xz', 'the image is xz-compressed but neither the xz command nor lzma-native is available');
}

/** The zstd command for a `.zst` source; TOOL_MISSING when there is none. */
export function checkZstd(path: string | undefined): string {
  if (path) return path;
  throw toolMissing('zstd', 'the image is zstd-compressed but the zstd command is not available');
}

export interface DecoderProcess {
  stdin: Writable;
  /** The decoded bytes, when the decoder was started with output 'pipe'. */
  stdout: Readable | null;
  /** Settles when the decoder exits: rejects with DECODE_FAILED (or ABORTED) unless it exited 0. */
  done: Promise<void>;
  /** Bytes xz has written to its output so far (its stdout's file offset, from /proc), when it can be read. */
  written(): Promise<number | undefined>;
  kill(): void;
  pid: number | undefined;
}

/**
 * Starts `xz -T0 -dc` (or `zstd -dc --sparse`) writing the open file descriptor `output` directly (and sparse: it
 * seeks over zero runs), or with 'pipe', to `stdout`. Plain child_process, no extra stream layers: this is the hot
 * path of every fetch.
 */
export function spawnDecoder(
  compression: Compression,
  path: string,
  output: number | 'pipe',
  where: string,
  signal: AbortSignal | undefined,
  threads = 0,
): DecoderProcess {
  const tool = TOOL[compression];
  const child = spawn(path, ARGS[compression](threads), {
    stdio: ['pipe', output, 'pipe'],
    ...(signal ? { signal, killSignal: 'SIGKILL' } : {}),
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    if (stderr.length < STDERR_LIMIT) stderr += text;
  });
  // A write after xz died (EPIPE) is reported through `done`, which names the real reason.
  child.stdin!.on('error', () => {});
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (error) => {
      if (signal?.aborted) return reject(abortError(signal));
      const err = error as NodeJS.ErrnoException;
      if (err.code === 'ENOENT') {
        return reject(toolMissing(tool, `cannot run ${path}`, undefined, error));
      }
      reject(decodeFailed(error, where, signal, compression));
    });
    child.once('close', (code, killedBy) => {
      if (code === 0) return resolve();
      if (signal?.aborted) return reject(abortError(signal));
      const detail =
        stderr.trim().split('\n').pop() ||
        (killedBy ? `${tool} was killed by ${killedBy}` : `${tool} exited with ${code}`);
      reject(decodeFailed(new Error(detail.replace(/^(xz|zstd): \(?stdin\)? ?: ?/, '')), where, signal, compression));
    });
  });
  // Without a rejection handler here, a failure seen first through a stream would be reported as unhandled.
  done.catch(() => undefined);
  const written = async () => {
    const info = await readFile(`/proc/${child.pid}/fdinfo/1`, 'utf8').catch(() => '');
    const match = /^pos:\s*(\d+)/m.exec(info);
    return match ? Number(match[1]) : undefined;
  };
  return {
    stdin: child.stdin!,
    stdout: child.stdout,
    done,
    written,
    kill: () => void child.kill('SIGKILL'),
    pid: child.pid,
  };
}

/** lzma-native's decoder as a Duplex (the fallback; single-threaded and much slower than xz). */
export function lzmaNativeDecoder(): Duplex {
  return loadLzmaNative()!.createDecompressor();
}

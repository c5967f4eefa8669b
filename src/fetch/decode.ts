// xz decoding: the system `xz -T0 -dc` as a child process; lzma-native only where no xz binary exists.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Duplex, Writable } from 'node:stream';
import type { Decoder } from '../context.js';
import { TemplatesError, abortError, isTemplatesError } from '../errors.js';


/** -T0: one thread per core; xz uses them only on files compressed in several blocks. */
const XZ_ARGS = ['-T0', '--decompress', '--stdout', '--quiet', '--no-warn'];
/** Enough of xz's stderr for the message; the rest is dropped. */
const STDERR_LIMIT = 8 * 1024;

export function decodeFailed(error: unknown, where: string, signal: AbortSignal | undefined): TemplatesError {
  if (signal?.aborted) return abortError(signal);
  if (isTemplatesError(error)) return error;
  const err = error as { message?: string };
  return new TemplatesError('DECODE_FAILED', `${where}: xz data is corrupt or truncated: ${err.message ?? 'decoder failed'}`, {
    url: where,
    tool: 'xz',
    hint: 'the download or the file on the server is damaged; try again, or ask the repository owner',
  }, { cause: error });
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
  throw new TemplatesError('TOOL_MISSING', 'the image is xz-compressed but neither the xz command nor lzma-native is available', {
    tool: 'xz',
    hint: 'install xz (Debian: apt-get install xz-utils)',
  });
}

export interface XzProcess {
  stdin: Writable;
  /** Settles when xz exits: rejects with DECODE_FAILED (or ABORTED) unless it exited 0. */
  done: Promise<void>;
  /** Bytes xz has written to its output so far (its stdout's file offset, from /proc), when it can be read. */
  written(): Promise<number | undefined>;
  kill(): void;
  pid: number | undefined;
}

/**
 * Starts `xz -T0 -dc` writing the open file descriptor `output` directly (and sparse: it seeks over zero runs).
 * Plain child_process, no extra stream layers: this is the hot path of every fetch.
 */
export function spawnXz(path: string, output: number, where: string, signal: AbortSignal | undefined): XzProcess {
  const child = spawn(path, XZ_ARGS, { stdio: ['pipe', output, 'pipe'], ...(signal ? { signal, killSignal: 'SIGKILL' } : {}) });
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
        return reject(new TemplatesError('TOOL_MISSING', `cannot run ${path}`, { tool: 'xz', hint: 'install xz (Debian: apt-get install xz-utils)' }, { cause: error }));
      }
      reject(decodeFailed(error, where, signal));
    });
    child.once('close', (code, killedBy) => {
      if (code === 0) return resolve();
      if (signal?.aborted) return reject(abortError(signal));
      const detail = stderr.trim().split('\n').pop() || (killedBy ? `xz was killed by ${killedBy}` : `xz exited with ${code}`);
      reject(decodeFailed(new Error(detail.replace(/^xz: \(stdin\): /, '')), where, signal));
    });
  });
  // Without a rejection handler here, a failure seen first through a stream would be reported as unhandled.
  done.catch(() => undefined);
  const written = async () => {
    const info = await readFile(`/proc/${child.pid}/fdinfo/1`, 'utf8').catch(() => '');
    const match = /^pos:\s*(\d+)/m.exec(info);
    return match ? Number(match[1]) : undefined;
  };
  return { stdin: child.stdin!, done, written, kill: () => void child.kill('SIGKILL'), pid: child.pid };
}

/** lzma-native's decoder as a Duplex (the fallback; single-threaded and much slower than xz). */
export function lzmaNativeDecoder(): Duplex {
  return loadLzmaNative()!.createDecompressor();
}

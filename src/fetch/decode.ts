// xz decoding: the system `xz -T0 -dc` as a child process; lzma-native only where no xz binary exists.
import { createRequire } from 'node:module';
import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { TemplatesError, abortError, isTemplatesError } from '../errors.js';
import { createSparseWriter } from './sparse-writer.js';

export type Decoder = { kind: 'xz'; path: string } | { kind: 'lzma-native' };

const XZ_ARGS = ['-T0', '--decompress', '--stdout', '--quiet'];

function decodeFailed(error: unknown, where: string, signal: AbortSignal | undefined): TemplatesError {
  if (signal?.aborted) return abortError(signal);
  if (isTemplatesError(error)) return error;
  const err = error as { stderr?: unknown; shortMessage?: string; message?: string };
  const detail = typeof err.stderr === 'string' && err.stderr.trim() ? err.stderr.trim().split('\n').pop() : err.shortMessage ?? err.message;
  return new TemplatesError('DECODE_FAILED', `${where}: xz data is corrupt or truncated: ${detail ?? 'decoder failed'}`, {
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

/** A Duplex that decodes xz; it errors with DECODE_FAILED when the data is bad. */
export function decodingStream(decoder: Decoder, signal: AbortSignal | undefined): Duplex {
  if (decoder.kind === 'lzma-native') return loadLzmaNative()!.createDecompressor();
  const subprocess = execa(decoder.path, XZ_ARGS, {
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: { stdout: false, stderr: true },
    stripFinalNewline: true,
    ...(signal ? { cancelSignal: signal } : {}),
  });
  return subprocess.duplex({ binary: true });
}

/**
 * Streams the xz bytes coming out of `stages` into the open file `fd`. With the xz binary, xz writes the fd itself (it makes the
 * output sparse); otherwise lzma-native's output goes through the sparse writer.
 */
export async function decodeToFd(decoder: Decoder, stages: [Readable, ...Duplex[]], fd: number, where: string, signal: AbortSignal | undefined): Promise<void> {
  try {
    if (decoder.kind === 'lzma-native') {
      await pipeline([...stages, loadLzmaNative()!.createDecompressor(), createSparseWriter(fd)], signal ? { signal } : {});
      return;
    }
    const subprocess = execa(decoder.path, XZ_ARGS, {
      stdin: 'pipe',
      // execa passes any fd number to spawn as is; its types only list 3-9. xz then writes the file (sparse) itself.
      stdout: fd as 3,
      stderr: 'pipe',
      stripFinalNewline: true,
      ...(signal ? { cancelSignal: signal } : {}),
    });
    await Promise.all([pipeline([...stages, subprocess.stdin], signal ? { signal } : {}), subprocess]);
  } catch (error) {
    throw decodeFailed(error, where, signal);
  }
}

export { decodeFailed };

// Conversion to raw: refuse qcow2 files that point outside themselves, then qemu-img with an explicit input format.
import { TemplatesError, abortError } from '../errors.js';
import { readQcow2Header } from './detect.js';

/** Formats this tool converts; others are refused rather than handed to qemu-img (they can name other files). */
const CONVERTIBLE = new Set(['qcow2']);

/** qcow2 incompatible-feature bit 2: the guest data lives in an external file. */
const QCOW2_EXTERNAL_DATA = 1n << 2n;

function checkConvertible(format: string, head: Buffer, where: string): void {
  if (!CONVERTIBLE.has(format)) {
    throw new TemplatesError('FORMAT_UNSUPPORTED', `${where}: ${format} images are not supported`, {
      url: where,
      format,
      hint: 'publish the template as raw or qcow2',
    });
  }
  const header = readQcow2Header(head);
  if (header.backingFileOffset !== 0n) {
    throw new TemplatesError('FORMAT_UNSUPPORTED', `${where}: the qcow2 image names a backing file`, {
      url: where,
      format,
      hint: 'templates must be self-contained; publish it flattened (qemu-img convert -O qcow2)',
    });
  }
  if (header.incompatibleFeatures & QCOW2_EXTERNAL_DATA) {
    throw new TemplatesError('FORMAT_UNSUPPORTED', `${where}: the qcow2 image uses an external data file`, {
      url: where,
      format,
      hint: 'templates must be self-contained; publish it flattened (qemu-img convert -O qcow2)',
    });
  }
}

/**
 * Whether an image of `format` (as detectImageFormat names it) can become a template: raw must be whole 512-byte
 * sectors (no magic says "raw"), anything else must be convertible. Throws FORMAT_UNSUPPORTED.
 */
export function checkSupported(format: string, head: Buffer, size: number, where: string): void {
  if (format !== 'raw') {
    checkConvertible(format, head, where);
    return;
  }
  if (size === 0 || size % 512 !== 0) {
    throw new TemplatesError(
      'FORMAT_UNSUPPORTED',
      `${where}: cannot determine the image format (${size} bytes, no known header, not whole 512-byte sectors)`,
      {
        url: where,
        hint: 'templates are raw or qcow2 images, optionally xz-compressed; ask the repository owner',
      },
    );
  }
}

/** `qemu-img convert -f <format> -O raw`; the output keeps zero runs as holes (qemu-img's default -S 4k). */
export async function convertToRaw(
  qemuImg: string,
  format: string,
  input: string,
  output: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  // execa loads only when an image needs converting.
  const { execa } = await import('execa');
  try {
    await execa(qemuImg, ['convert', '-q', '-f', format, '-O', 'raw', input, output], {
      stdin: 'ignore',
      stdout: 'ignore',
      stderr: 'pipe',
      ...(signal ? { cancelSignal: signal } : {}),
    });
  } catch (error) {
    if (signal?.aborted) throw abortError(signal);
    const err = error as { code?: string; stderr?: string; shortMessage?: string };
    if (err.code === 'ENOENT') {
      throw new TemplatesError(
        'TOOL_MISSING',
        `${format} image needs qemu-img, which is not installed`,
        {
          tool: 'qemu-img',
          hint: 'install qemu-img (Debian: apt-get install qemu-utils)',
        },
        { cause: error },
      );
    }
    throw new TemplatesError(
      'CONVERT_FAILED',
      `qemu-img could not convert the ${format} image: ${(err.stderr || err.shortMessage || '').trim()}`,
      {
        tool: 'qemu-img',
        format,
        hint: 'the image is damaged or not what its header claims; ask the repository owner',
      },
      { cause: error },
    );
  }
}

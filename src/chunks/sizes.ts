// Chunk sizes: casync's `MIN:AVG:MAX` (with K and M), checked against what every casync reader accepts.
import { TemplatesError } from '../errors.js';
import { CHUNK_SIZE_LIMIT_MAX, type ChunkSizes, WINDOW } from './buzhash.js';

/**
 * What `templates index` cuts at unless told: 8K:32K:128K. Measured here (docs/delta.md) on a 384 MiB ext4 image and
 * its next version, a delta moved 10.9 MiB at these sizes against 16.2 MiB at casync's 16K:64K:256K, for an index
 * twice as long (40 bytes per chunk: ~0.1 % of the image) and twice the chunk requests, which the fetch makes many at once.
 */
export const DEFAULT_CHUNK_SIZES: ChunkSizes = { min: 8 * 1024, avg: 32 * 1024, max: 128 * 1024 };

/** Refuses sizes outside WINDOW ≤ min ≤ avg ≤ max ≤ 128 MiB (below a window no cut can be found). */
export function checkChunkSizes(sizes: ChunkSizes, what = 'chunk sizes'): ChunkSizes {
  const { min, avg, max } = sizes;
  const whole = [min, avg, max].every((n) => Number.isSafeInteger(n));
  if (!whole || !(WINDOW <= min && min <= avg && avg <= max && max <= CHUNK_SIZE_LIMIT_MAX))
    throw new TemplatesError('USAGE', `${what} ${min}:${avg}:${max}: need ${WINDOW} ≤ MIN ≤ AVG ≤ MAX ≤ 128M`, {
      hint: 'for example --chunk-size 8K:32K:128K (casync: 16K:64K:256K)',
    });
  return sizes;
}

/** `MIN:AVG:MAX`, each a byte count with an optional K or M (binary), as casync's --chunk-size takes them. */
export function parseChunkSizes(text: string): ChunkSizes {
  const parts = text.split(':').map((part) => {
    const match = /^(\d+)([KkMm]?)$/.exec(part);
    if (!match) return Number.NaN;
    const unit = match[2]?.toUpperCase();
    return Number(match[1]) * (unit === 'K' ? 1024 : unit === 'M' ? 1024 * 1024 : 1);
  });
  if (parts.length !== 3 || parts.some(Number.isNaN))
    throw new TemplatesError('USAGE', `--chunk-size ${JSON.stringify(text)}: expected MIN:AVG:MAX`, {
      hint: 'for example --chunk-size 8K:32K:128K',
    });
  const [min, avg, max] = parts as [number, number, number];
  return checkChunkSizes({ min, avg, max }, '--chunk-size');
}

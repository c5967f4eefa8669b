// Digest of a whole file, streamed (verify, adopt, and entries whose stored bytes were not hashed on the way in).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';

/** Hex digests of the file, one per algorithm name node:crypto knows (`sha1`, `sha256`, …). */
export async function hashFile<A extends string>(
  path: string,
  algorithms: readonly A[],
  signal?: AbortSignal,
): Promise<Record<A, string>> {
  const hashes = algorithms.map((algorithm) => [algorithm, createHash(algorithm)] as const);
  await pipeline(
    createReadStream(path, { highWaterMark: 1024 * 1024 }),
    async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) for (const [, hash] of hashes) hash.update(chunk);
    },
    signal ? { signal } : {},
  );
  return Object.fromEntries(hashes.map(([algorithm, hash]) => [algorithm, hash.digest('hex')])) as Record<A, string>;
}

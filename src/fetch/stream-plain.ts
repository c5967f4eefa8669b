// The plain route: an uncompressed source written as it arrives (continuing a kept prefix in place), sparse, hashed as it passes.
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Counter } from './counter.js';
import { sizeError } from './download-errors.js';
import { createSparseWriter } from './sparse-writer.js';
import type { Executed, StreamJob } from './stream-job.js';

export async function streamPlain(job: StreamJob): Promise<Executed> {
  const { image, limit, options, output } = job;
  const onBytes = (bytes: number) => options.onBytes?.(bytes, image.size, image.location);
  const arrived = new Counter(onBytes, { bytes: limit.bytes, tooMany: job.tooMany });
  arrived.bytes = job.replay?.offset ?? 0;
  // Hashed as it passes (reading the sparse file back would fault in a zeroed page per hole); a resumed file by a
  // worker reading it from its start, kept prefix included.
  await pipeline(
    [
      image.body,
      arrived,
      ...(job.passing ? [job.passing] : []),
      createSparseWriter(output.handle.fd, arrived.bytes),
    ] as unknown as [Readable, Writable],
    options.signal ? { signal: options.signal } : {},
  );
  await output.handle.sync();
  if (limit.declared && arrived.bytes !== limit.bytes) throw sizeError(image.location, limit, arrived.bytes, false);
  return { actual: await job.hasher.digest(arrived.bytes), arrived: arrived.bytes };
}

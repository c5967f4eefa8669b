// Read the first bytes of a stream without consuming them (they are unshifted back).
import type { Readable } from 'node:stream';
import { once } from 'node:events';

export async function peek(stream: Readable, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < bytes) {
    const chunk = stream.read() as Buffer | null;
    if (chunk !== null) {
      chunks.push(chunk);
      total += chunk.length;
      continue;
    }
    if (stream.readableEnded) break;
    // 'readable' fires when data is buffered or at end; 'error' rejects.
    const ended = await Promise.race([
      once(stream, 'readable').then(() => false),
      once(stream, 'end').then(() => true),
    ]);
    if (ended && stream.readableLength === 0) break;
  }
  const head = Buffer.concat(chunks, total);
  if (head.length) stream.unshift(head);
  return head.subarray(0, bytes);
}

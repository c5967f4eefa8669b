// pumpFile: a range of a file, a file still growing, a short file, a reader that goes away, an abort.
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pumpFile } from '../../src/fetch/file-pump.js';
import { workspace, type Workspace } from '../helpers/env.js';

let ws: Workspace;
beforeEach(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await ws.cleanup();
});

/**
 * A writable that keeps what it got, slowly (a tick per write) and never asking to drain, so the pump waits for its
 * buffers. It copies a chunk only when done with it, as a socket does: a buffer reused before its write's callback
 * would show in the result.
 */
function collector(): Writable & { bytes(): Buffer } {
  const parts: Buffer[] = [];
  const out = new Writable({
    highWaterMark: 64 * 1024 * 1024,
    write(chunk: Buffer, _encoding, done) {
      setImmediate(() => {
        parts.push(Buffer.from(chunk));
        done();
      });
    },
  }) as Writable & { bytes(): Buffer };
  out.bytes = () => Buffer.concat(parts);
  return out;
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('pumpFile', () => {
  it('writes exactly the range asked for, reusing its buffers, and ends the writable', async () => {
    const data = randomBytes(9 * 1024 * 1024 + 123);
    const path = join(ws.dir, 'f');
    await writeFile(path, data);
    const handle = await open(path, 'r');
    try {
      const ranges: Array<[number, number]> = [
        [0, data.length],
        [5, 5 * 1024 * 1024 + 7],
        [data.length - 10, data.length],
        [7, 7],
      ];
      for (const [start, end] of ranges) {
        const out = collector();
        let counted = 0;
        await pumpFile(handle, out, { start, end, onBytes: (bytes) => (counted += bytes) });
        expect(out.writableEnded).toBe(true);
        expect(sha(out.bytes())).toBe(sha(data.subarray(start, end)));
        expect(counted).toBe(end - start);
      }
    } finally {
      await handle.close();
    }
  });

  it('follows a file another writer appends to until its length is known', async () => {
    const path = join(ws.dir, 'growing');
    await writeFile(path, '');
    const handle = await open(path, 'r');
    const chunks = Array.from({ length: 6 }, () => randomBytes(700 * 1024));
    let length: number | undefined;
    const out = collector();
    const pumping = pumpFile(handle, out, { end: () => length });
    for (const chunk of chunks) {
      await appendFile(path, chunk);
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    length = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    await pumping;
    await handle.close();
    expect(sha(out.bytes())).toBe(sha(Buffer.concat(chunks)));
  });

  it('rejects when the file is shorter than the range, and with the reason when its signal aborts', async () => {
    const path = join(ws.dir, 'short');
    await writeFile(path, randomBytes(1000));
    const handle = await open(path, 'r');
    try {
      await expect(pumpFile(handle, collector(), { end: 5000 })).rejects.toThrow(/ended at byte 1000 of 5000/);
      const stop = new AbortController();
      const waiting = pumpFile(handle, collector(), { end: () => undefined, signal: stop.signal });
      setTimeout(() => stop.abort(new Error('the download failed')), 30);
      await expect(waiting).rejects.toThrow('the download failed');
    } finally {
      await handle.close();
    }
  });

  it('stops quietly when the writable is destroyed (a client that went away)', async () => {
    const path = join(ws.dir, 'big');
    await writeFile(path, randomBytes(8 * 1024 * 1024));
    const handle = await open(path, 'r');
    try {
      const out = new PassThrough({ highWaterMark: 1024 });
      let received = 0;
      out.on('data', (chunk: Buffer) => {
        received += chunk.length;
        out.destroy();
      });
      await pumpFile(handle, out, { end: 8 * 1024 * 1024 });
      expect(out.destroyed).toBe(true);
      expect(received).toBeLessThan(8 * 1024 * 1024);
    } finally {
      await handle.close();
    }
  });
});

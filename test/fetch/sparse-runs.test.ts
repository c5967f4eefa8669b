// The data runs a sparse write leaves: every non-zero byte written, every whole zero block (aligned to the file) a hole.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { forEachDataRun } from '../../src/fetch/sparse-runs.js';

const BLOCK = 4096;

/** Buffers of a few blocks, mostly zeros with a few non-zero bytes placed anywhere, at any file offset. */
const cases = fc.record({
  length: fc.integer({ min: 0, max: 5 * BLOCK }),
  position: fc.integer({ min: 0, max: 3 * BLOCK }),
  bytes: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 8 }),
});

function runsOf(length: number, position: number, bytes: Array<[number, number]>) {
  const buffer = Buffer.alloc(length);
  for (const [at, value] of bytes) if (length) buffer[at % length] = value;
  const runs: Array<[number, number]> = [];
  forEachDataRun(buffer, length, position, (start, end) => runs.push([start, end]));
  return { buffer, runs };
}

describe('forEachDataRun', () => {
  it('covers every non-zero byte, leaves out only whole zero blocks, in order and without overlap', () => {
    fc.assert(
      fc.property(cases, ({ length, position, bytes }) => {
        const { buffer, runs } = runsOf(length, position, bytes);
        const covered = new Uint8Array(length);
        let last = 0;
        for (const [start, end] of runs) {
          expect(start).toBeGreaterThanOrEqual(last);
          expect(end).toBeGreaterThan(start);
          last = end;
          covered.fill(1, start, end);
          // Runs start and end on the file's block boundaries (or the buffer's ends).
          expect(start === 0 || (position + start) % BLOCK === 0).toBe(true);
          expect(end === length || (position + end) % BLOCK === 0).toBe(true);
        }
        // Every non-zero byte is in a run; what is skipped is zeros only, so it reads back as the hole it becomes.
        expect(buffer.some((byte, i) => !covered[i] && byte !== 0)).toBe(false);
        // And a run holds no whole zero block: those are left as holes.
        for (const [start, end] of runs) {
          for (let at = start; at < end; ) {
            const next = Math.min(end, at + BLOCK - ((position + at) % BLOCK));
            expect(buffer.subarray(at, next).some((byte) => byte !== 0)).toBe(true);
            at = next;
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('merges adjacent data blocks into one run, and gives none for zeros', () => {
    const data = Buffer.alloc(3 * BLOCK, 1);
    const runs: Array<[number, number]> = [];
    forEachDataRun(data, data.length, 0, (start, end) => runs.push([start, end]));
    expect(runs).toEqual([[0, 3 * BLOCK]]);
    forEachDataRun(Buffer.alloc(2 * BLOCK), 2 * BLOCK, 100, () => expect.unreachable());
  });
});

// Where a buffer's non-zero bytes are, in runs of whole filesystem blocks aligned to the file offset: what a sparse writer writes.

/** Hole granularity: the filesystem block size of ext4/xfs. */
const SPARSE_BLOCK = 4096;
const ZEROS = Buffer.alloc(SPARSE_BLOCK);

/**
 * Calls `run(start, end)` for each run of blocks of `buffer[0, length)` holding a non-zero byte, in order; `position`
 * is the buffer's offset in the file, so that blocks (and so holes) fall on the filesystem's block boundaries.
 */
export function forEachDataRun(
  buffer: Buffer,
  length: number,
  position: number,
  run: (start: number, end: number) => void,
): void {
  let start = -1;
  for (let offset = 0; offset < length; ) {
    const end = Math.min(length, offset + SPARSE_BLOCK - ((position + offset) % SPARSE_BLOCK));
    const zero = buffer.compare(ZEROS, 0, end - offset, offset, end) === 0;
    if (zero && start >= 0) {
      run(start, offset);
      start = -1;
    } else if (!zero && start < 0) start = offset;
    offset = end;
  }
  if (start >= 0) run(start, length);
}

// Progress events of `templates index`: a typed callback the library calls and the CLI renders.

export type IndexProgressEvent =
  /** Uncompressed bytes of one image read so far (being compressed, or checked when its xz is already fit). */
  | { ref: string; phase: 'compress'; bytes: number; total: number }
  | { ref: string; phase: 'indexed'; status: IndexedStatus };

/** compressed: a new `.xz` was written; verified: an existing multi-block `.xz` was read and hashed; unchanged: nothing read. */
export type IndexedStatus = 'compressed' | 'verified' | 'unchanged';

export type IndexProgressCallback = (event: IndexProgressEvent) => void;

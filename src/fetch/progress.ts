// Progress events: a typed callback the library calls and the CLI renders.

export type ProgressEvent =
  | { ref: string; phase: 'waiting-for-lock' }
  | { ref: string; phase: 'download'; location: string; bytes: number; total?: number }
  /** The downloaded `.xz` matched the repository's compressed digest (the rest is decoding, converting, publishing). */
  | { ref: string; phase: 'verified'; of: 'compressed' }
  | { ref: string; phase: 'convert'; format: string }
  /** A delta fetch is about to fetch `fetchedChunks` chunks (`fetchedBytes`), reusing `reusedBytes` of stored images. */
  | { ref: string; phase: 'delta'; chunks: number; reusedBytes: number; fetchedChunks: number; fetchedBytes: number }
  /** The delta fetch failed (`code`, `message`): the whole file is fetched instead. */
  | { ref: string; phase: 'delta-failed'; code: string; message: string }
  /** A server failed (`code`, `message`) and `next` is tried: a dead, stale or lying mirror passed over. */
  | { ref: string; phase: 'server-failed'; url: string; code: string; message: string; next: string }
  | { ref: string; phase: 'done'; status: 'downloaded' | 'cached' };

export type ProgressCallback = (event: ProgressEvent) => void;

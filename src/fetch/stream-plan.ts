// Which way streamToFile goes (pure): from what the source is and what is verified, how it is decoded, hashed and written.

/** What the choice depends on, all known before the first byte is decoded. */
export interface StreamInputs {
  /** The source's bytes are xz or zstd. */
  compressed: boolean;
  /** The decoder, when compressed: a child process (xz, zstd) or lzma-native on this thread. */
  decoder?: 'process' | 'lzma-native';
  /** What the digest covers: the image itself, or the compressed file as it arrives (.xz or .zst: the fast paths). */
  verifies: 'image' | 'compressed';
  /** A kept prefix is continued (resume). */
  resumed: boolean;
  /** The source is small enough to hash on this thread (Context.inlineHashMaxBytes): no worker is started. */
  small: boolean;
  /** A file keeps the compressed bytes as they arrive (the partial download, or a kept copy). */
  kept: boolean;
  /** Context.fifo: a decoder process may write a FIFO that a worker reads, hashes and writes sparse. */
  fifo: boolean;
  /** A cache host's way: the download writes the kept file at the network's pace, the decoder follows it. */
  decodeBehind: boolean;
}

/**
 * How the digest is taken: on this thread as bytes pass (`inline`), on a worker as they pass (`parallel`), by a worker
 * reading a file right behind its writer (`follow-output`: the image; `follow-kept`: the kept compressed file), or by
 * the worker that reads the decoder's FIFO (`fifo`).
 */
export type HashingPlan = 'inline' | 'parallel' | 'follow-output' | 'follow-kept' | 'fifo';

export interface StreamPlan {
  /** plain: no decoder; lzma-native: decoded on this thread; decoder: a child process fed from here; decode-behind: fed from the kept file. */
  route: 'plain' | 'lzma-native' | 'decoder' | 'decode-behind';
  hashing: HashingPlan;
  /** A stream hasher sits before the decoder (it hashes the compressed bytes) or after it (the decoded ones). */
  hashes?: 'compressed' | 'decoded';
  /** Where a decoder process writes: the output file itself (sparse), a FIFO a worker reads, or a pipe to this thread. */
  decoderWrites?: 'file' | 'fifo' | 'pipe';
  /** When the FIFO cannot be made here: the same download through a pipe. */
  fallback?: StreamPlan;
}

export function planStream(input: StreamInputs): StreamPlan {
  if (!input.compressed) {
    // Hashed as it passes, unless a resumed file must be hashed from its start, kept prefix included.
    return { route: 'plain', hashing: input.resumed ? 'follow-output' : input.small ? 'inline' : 'parallel' };
  }
  const fast = input.verifies === 'compressed';
  const process = input.decoder === 'process';
  const route = !process ? 'lzma-native' : input.decodeBehind && input.kept ? 'decode-behind' : 'decoder';
  const streamHashing = (): HashingPlan =>
    fast && input.small ? 'inline' : fast && input.kept ? 'follow-kept' : 'parallel';
  const stream = (hashing: HashingPlan, decoderWrites?: StreamPlan['decoderWrites']): StreamPlan => ({
    route,
    hashing,
    ...(hashing === 'inline' || hashing === 'parallel'
      ? { hashes: fast ? ('compressed' as const) : ('decoded' as const) }
      : {}),
    ...(decoderWrites ? { decoderWrites } : {}),
  });
  if (!process) return stream(streamHashing());
  // The fast paths: the decoder writes the image itself, sparse; the compressed bytes are what is hashed.
  if (fast) return stream(streamHashing(), 'file');
  // The image's digest: taken from the decoded bytes, never read back from the sparse file.
  const piped = stream('parallel', 'pipe');
  return input.fifo ? { ...stream('fifo', 'fifo'), fallback: piped } : piped;
}

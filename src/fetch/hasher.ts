// What every way of taking a download's digest offers: the digest once the bytes are all there, and an end.
import type { Digest } from '../repository/digest.js';

export interface Hasher {
  /** The digest, once every byte went through (or, for a file hashed behind its writer, of its first `size` bytes). */
  digest(size: number): Promise<Digest>;
  /** Ends whatever the hasher started (a worker); call in every case once done. */
  close(): Promise<void>;
}

// The provider interface: open one file of a source by handle and suffix, or say it is absent.
import type { Readable } from 'node:stream';

export interface OpenedFile {
  /** URL or absolute path, for messages (no credentials). */
  location: string;
  /** Size in bytes when known up front. */
  size?: number;
  body: Readable;
}

export interface OpenOptions {
  signal?: AbortSignal;
}

export interface Provider {
  /** Where `handle + suffix` lives, for messages and `resolve` (no credentials). */
  locate(handle: string, suffix: string): string;
  /**
   * Opens `handle + suffix`. Resolves to null only when the file is absent (HTTP 404/410, ENOENT);
   * every other failure rejects with a TemplatesError.
   */
  open(handle: string, suffix: string, options?: OpenOptions): Promise<OpenedFile | null>;
}

// The provider interface: open one file of a source by handle and suffix, or say it is absent.
import type { Readable } from 'node:stream';

export interface OpenedFile {
  /** URL or absolute path, for messages (no credentials). */
  location: string;
  /** Size in bytes of the whole file when known up front. */
  size?: number;
  /** Where `body` starts in the file: the resume offset when the source honoured it, else 0. */
  offset: number;
  /** A strong ETag or a Last-Modified date that identifies this version of the file; only then can it be resumed. */
  validator?: string;
  body: Readable;
}

export interface OpenOptions {
  signal?: AbortSignal;
  /** Ask for the file from `offset` on, only if it is still the version `validator` names (Range + If-Range). */
  resume?: { offset: number; validator: string };
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

// TemplatesError: the one error class, with stable codes, structured fields and the CLI exit code of each code.

/** Every code the library throws; stable across releases (docs/errors.md). */
export const ERROR_CODES = {
  USAGE: 2,
  BAD_REFERENCE: 2,
  NO_REPOSITORIES: 2,
  CONFIG_INVALID: 2,
  REPO_NOT_FOUND: 3,
  TEMPLATE_NOT_FOUND: 3,
  VERSION_NOT_FOUND: 3,
  NOT_STORED: 3,
  JOB_NOT_FOUND: 3,
  ENTRY_IN_USE: 10,
  JOB_CONFLICT: 10,
  JOB_FORBIDDEN: 6,
  JOB_TIMEOUT: 8,
  CORRUPT: 11,
  IMAGE_NOT_FOUND: 3,
  INPUT_NOT_FOUND: 3,
  REPO_INVALID: 4,
  ENTRY_BROKEN: 4,
  METADATA_INVALID: 4,
  INDEX_INVALID: 4,
  HASH_MISMATCH: 5,
  CHUNK_MISMATCH: 5,
  HASH_INVALID: 5,
  HASH_MISSING: 5,
  FORMAT_MISMATCH: 5,
  SIZE_MISMATCH: 5,
  IMAGE_TOO_LARGE: 5,
  SOURCE_UNREACHABLE: 6,
  SOURCE_HTTP_ERROR: 6,
  OFFLINE: 6,
  AUTH_FAILED: 6,
  MIRRORS_FAILED: 6,
  STATUS_UNHEALTHY: 12,
  REPO_UNSIGNED: 13,
  REPO_SIGNATURE_INVALID: 13,
  REPO_SIGNATURE_EXPIRED: 13,
  REPO_ROLLBACK: 13,
  LOCK_MISMATCH: 14,
  KEY_INVALID: 2,
  DECODE_FAILED: 7,
  CONVERT_FAILED: 7,
  FORMAT_UNSUPPORTED: 7,
  TOOL_MISSING: 7,
  COMPRESS_FAILED: 7,
  LOCK_TIMEOUT: 8,
  STORE_IO: 9,
  STORE_FULL: 9,
  OUTPUT_IO: 9,
  ABORTED: 130,
  INTERNAL: 1,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Structured details; every field is optional and present when it applies. */
export interface ErrorFields {
  ref?: string;
  repository?: string;
  template?: string;
  version?: string;
  file?: string;
  jsonPath?: string;
  url?: string;
  status?: number;
  expected?: string;
  actual?: string;
  path?: string;
  tool?: string;
  format?: string;
  /** LOCK_TIMEOUT: the lock holder as `pid@host`. */
  holder?: string;
  /** MIRRORS_FAILED: every server tried, in order, and why it failed. */
  attempts?: Array<{ url: string; code: ErrorCode; message: string }>;
  hint?: string;
}

/** Marks a TemplatesError in a way every copy of this package shares (Symbol.for is process-wide, unlike a class). */
const BRAND = Symbol.for('templates.TemplatesError');

export class TemplatesError extends Error {
  override readonly name = 'TemplatesError';
  readonly [BRAND] = true;
  readonly code: ErrorCode;
  readonly fields: ErrorFields;

  constructor(code: ErrorCode, message: string, fields: ErrorFields = {}, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.fields = fields;
  }

  /** The documented CLI exit code for this error's code. */
  get exitCode(): number {
    return ERROR_CODES[this.code];
  }

  /** One line: what failed, then what to do when a hint is known. */
  toLine(): string {
    return this.fields.hint ? `${this.message} (${this.fields.hint})` : this.message;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...this.fields };
  }
}

/** Whether `error` is a TemplatesError (from this copy of the package or another one), with `code` when given. */
export function isTemplatesError(error: unknown, code?: ErrorCode): error is TemplatesError {
  const branded = typeof error === 'object' && error !== null && (error as { [BRAND]?: unknown })[BRAND] === true;
  return branded && (code === undefined || (error as TemplatesError).code === code);
}

/** Turns any failure into a TemplatesError (unexpected ones become INTERNAL). */
export function asTemplatesError(error: unknown): TemplatesError {
  if (isTemplatesError(error)) return error;
  return new TemplatesError(
    'INTERNAL',
    `unexpected error: ${(error as Error)?.stack ?? String(error)}`,
    { hint: 'please report this as a bug' },
    { cause: error },
  );
}

/** Normalises an AbortSignal's reason into an ABORTED error. */
export function abortError(signal: AbortSignal | undefined): TemplatesError {
  const reason: unknown = signal?.reason;
  if (isTemplatesError(reason)) return reason;
  return new TemplatesError('ABORTED', 'operation aborted', {}, { cause: reason });
}

/** Wraps an unexpected filesystem error from the store in STORE_IO, naming the path. */
export function storeIoError(error: unknown, path: string, doing: string): TemplatesError {
  if (isTemplatesError(error)) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const hint =
    code === 'ENOSPC'
      ? 'free some space or point --store at a larger filesystem'
      : code === 'EACCES' || code === 'EPERM'
        ? 'check the permissions of the store directory'
        : code === 'EROFS'
          ? 'the store is on a read-only filesystem; use --store DIR'
          : undefined;
  return new TemplatesError(
    'STORE_IO',
    `${doing} ${path}: ${code ?? String(error)}`,
    { path, ...(hint ? { hint } : {}) },
    { cause: error },
  );
}

/** Wraps a filesystem error while writing a published repository (index, export) in OUTPUT_IO, naming the path. */
export function outputIoError(error: unknown, path: string, doing: string): TemplatesError {
  if (isTemplatesError(error)) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const hint =
    code === 'ENOSPC'
      ? 'free some space on the output filesystem'
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? 'the directory must be writable: index writes the .xz, .hash and .metadata files next to each image'
        : undefined;
  return new TemplatesError(
    'OUTPUT_IO',
    `${doing} ${path}: ${code ?? String(error)}`,
    { path, ...(hint ? { hint } : {}) },
    { cause: error },
  );
}

/** Removes user:password@ from URLs so messages never print credentials. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, '$1***@');
}

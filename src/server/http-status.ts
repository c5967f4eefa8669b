// Error codes to HTTP statuses, and the JSON body of an error response: the one place the server maps failures.
import type { FastifyReply } from 'fastify';
import { asTemplatesError, type ErrorCode, type TemplatesError } from '../errors.js';

/**
 * Every code's status (a Record, not a Partial: a new code does not compile until it has one). 4xx: the request is wrong;
 * 502: upstream failed or cannot be trusted; 503: this server cannot do it now; 507: its store is full or unwritable;
 * 500: only INTERNAL, a bug.
 */
const STATUS: Record<ErrorCode, number> = {
  USAGE: 400,
  BAD_REFERENCE: 400,
  CONFIG_INVALID: 400,
  KEY_INVALID: 400,
  NO_REPOSITORIES: 404,
  REPO_NOT_FOUND: 404,
  TEMPLATE_NOT_FOUND: 404,
  VERSION_NOT_FOUND: 404,
  NOT_STORED: 404,
  IMAGE_NOT_FOUND: 404,
  INPUT_NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  JOB_FORBIDDEN: 403,
  ENTRY_IN_USE: 409,
  JOB_CONFLICT: 409,
  LOCK_MISMATCH: 409,
  REPO_INVALID: 502,
  ENTRY_BROKEN: 502,
  METADATA_INVALID: 502,
  INDEX_INVALID: 502,
  HASH_MISMATCH: 502,
  CHUNK_MISMATCH: 502,
  HASH_INVALID: 502,
  HASH_MISSING: 502,
  FORMAT_MISMATCH: 502,
  SIZE_MISMATCH: 502,
  IMAGE_TOO_LARGE: 502,
  SOURCE_UNREACHABLE: 502,
  SOURCE_HTTP_ERROR: 502,
  AUTH_FAILED: 502,
  MIRRORS_FAILED: 502,
  DECODE_FAILED: 502,
  CONVERT_FAILED: 502,
  FORMAT_UNSUPPORTED: 502,
  REPO_UNSIGNED: 502,
  REPO_SIGNATURE_INVALID: 502,
  REPO_SIGNATURE_EXPIRED: 502,
  REPO_ROLLBACK: 502,
  OFFLINE: 503,
  LOCK_TIMEOUT: 503,
  ABORTED: 503,
  STATUS_UNHEALTHY: 503,
  TOOL_MISSING: 503,
  COMPRESS_FAILED: 503,
  CORRUPT: 503,
  JOB_TIMEOUT: 504,
  STORE_IO: 507,
  STORE_FULL: 507,
  OUTPUT_IO: 507,
  INTERNAL: 500,
};

/** The status of an error; a route may set `httpStatus` on one where its meaning differs (a bad job submission: 400). */
export function httpStatusOf(error: TemplatesError): number {
  return (error as TemplatesError & { httpStatus?: number }).httpStatus ?? STATUS[error.code];
}

/** Sends `{"error": {code, message, hint}}` with the code's status; never a stack trace. */
export function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  const failure = asTemplatesError(error);
  const status = httpStatusOf(failure);
  return reply
    .code(status)
    .type('application/json')
    .send({
      error: {
        code: failure.code,
        message: failure.toLine(),
        ...(failure.fields.hint ? { hint: failure.fields.hint } : {}),
      },
    });
}

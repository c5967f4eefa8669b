// Every error code has its HTTP status: 4xx for a wrong request, 5xx by whose failure it is; only INTERNAL is a 500.
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, TemplatesError, type ErrorCode } from '../../src/errors.js';
import { httpStatusOf } from '../../src/server/http-status.js';

const status = (code: ErrorCode) => httpStatusOf(new TemplatesError(code, 'x'));

describe('httpStatusOf', () => {
  it('maps every code, and only INTERNAL to 500', () => {
    const codes = Object.keys(ERROR_CODES) as ErrorCode[];
    for (const code of codes) expect([400, 403, 404, 409, 502, 503, 504, 507, 500]).toContain(status(code));
    expect(codes.filter((code) => status(code) === 500)).toEqual(['INTERNAL']);
  });

  it.each([
    ['AUTH_FAILED', 502],
    ['REPO_SIGNATURE_INVALID', 502],
    ['REPO_ROLLBACK', 502],
    ['TOOL_MISSING', 503],
    ['CORRUPT', 503],
    ['LOCK_MISMATCH', 409],
    ['STORE_FULL', 507],
    ['JOB_TIMEOUT', 504],
  ] as const)('%s is %i', (code, expected) => {
    expect(status(code)).toBe(expected);
  });

  it('lets a route give a code another status (a refused job submission is 400)', () => {
    expect(httpStatusOf(Object.assign(new TemplatesError('TEMPLATE_NOT_FOUND', 'x'), { httpStatus: 400 }))).toBe(400);
  });
});

// Checks of a library caller's arguments at the API boundary: a USAGE error saying what was expected, never a TypeError deep inside.
import { TemplatesError } from '../errors.js';

/** A short description of what a caller passed, for the error message. */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    const keys = Object.keys(value as object).slice(0, 4);
    return `${name && name !== 'Object' ? `a ${name}` : 'an object'}${keys.length ? ` with ${keys.join(', ')}` : ''}`;
  }
  return `${typeof value} ${String(value)}`;
}

/** The USAGE error for argument `what` of `fn`: `fn: what must be EXPECTED (got …)`. */
export function badArgument(fn: string, what: string, expected: string, got: unknown, hint?: string): TemplatesError {
  return new TemplatesError(
    'USAGE',
    `${fn}: ${what} must be ${expected} (got ${describeValue(got)})`,
    hint ? { hint } : {},
  );
}

export function checkObject(fn: string, what: string, value: unknown): asserts value is object {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw badArgument(fn, what, 'an object', value);
}

export function checkStrings(fn: string, what: string, value: unknown): asserts value is string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && item !== '')) {
    throw badArgument(fn, what, 'an array of non-empty strings', value);
  }
}

export function checkSignal(fn: string, value: unknown): asserts value is AbortSignal | undefined {
  if (value !== undefined && !(value instanceof AbortSignal)) throw badArgument(fn, 'signal', 'an AbortSignal', value);
}

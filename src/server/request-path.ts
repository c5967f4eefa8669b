// The names in a request path (pure): decoded once, checked as store names before anything is looked up.
import { isValidName } from '../repository/reference.js';

/** Longest name accepted in a path segment; longer ones are refused before any lookup. */
const MAX_NAME_LENGTH = 255;

export type Segments = { ok: true; names: string[] } | { ok: false; why: string };

/**
 * The decoded segments of the path below `prefix` (query removed). Every segment must decode (no bad percent
 * escapes) and pass `accept` (by default: a valid store name; `.`, `..`, `/`, NUL and the like never do).
 */
export function segmentsBelow(
  rawUrl: string,
  prefix: string,
  accept: (segment: string, index: number) => boolean = (s) => isValidName(s),
): Segments {
  const path = rawUrl.split('?', 1)[0]!;
  if (!path.startsWith(prefix)) return { ok: false, why: 'outside the prefix' };
  const raw = path.slice(prefix.length).split('/');
  const names: string[] = [];
  for (const [index, piece] of raw.entries()) {
    let name: string;
    try {
      name = decodeURIComponent(piece);
    } catch {
      return { ok: false, why: 'a bad percent-escape' };
    }
    if (name.length === 0 || name.length > MAX_NAME_LENGTH || !accept(name, index))
      return { ok: false, why: `${JSON.stringify(name.slice(0, 40))} is not a valid name` };
    names.push(name);
  }
  return { ok: true, names };
}

/** Percent-encodes a name for an href. */
export const hrefName = (name: string) => encodeURIComponent(name);

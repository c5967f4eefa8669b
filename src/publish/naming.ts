// Template name and version of an image (pure): from its metadata's `name`/`version`, else from its path.
import { isValidName } from '../repository/reference.js';

export interface Naming {
  name: string;
  version: string;
  from: 'metadata' | 'path';
}

/**
 * From the handle (the image's path below DIR, without `.xz`):
 * - `…/NAME/VERSION/FILE` (three or more segments): the two directories above the file;
 * - `NAME-VERSION.EXT` otherwise: the file name without one extension that starts with a letter (`.raw`,
 *   `.qcow2`, `.img`), split at the last `-` that is followed by a digit or by `v` and a digit.
 */
export function namingFromPath(handle: string): { name: string; version: string } | undefined {
  const segments = handle.split('/');
  if (segments.length >= 3) {
    const [name, version] = segments.slice(-3, -1) as [string, string];
    return isValidName(name) && isValidName(version) ? { name, version } : undefined;
  }
  const stem = segments[segments.length - 1]!.replace(/\.[A-Za-z][A-Za-z0-9]*$/, '');
  const match = /^(.+)-(v?[0-9][A-Za-z0-9._+]*)$/.exec(stem);
  if (!match) return undefined;
  const [, name, version] = match as unknown as [string, string, string];
  return isValidName(name) && isValidName(version) ? { name, version } : undefined;
}

/** Metadata wins when it has both keys; a metadata name or version that is not a valid name is a problem, not a fallback. */
export function nameImage(handle: string, metadata: Record<string, unknown>): Naming | { problem: string } {
  const { name, version } = metadata;
  if (name !== undefined || version !== undefined) {
    if (typeof name === 'string' && typeof version === 'string') {
      if (!isValidName(name) || !isValidName(version))
        return {
          problem: `metadata name/version ${JSON.stringify(`${name}:${version}`)} is not made of [A-Za-z0-9._+-]`,
        };
      return { name, version, from: 'metadata' };
    }
    if (name !== undefined && version !== undefined)
      return { problem: 'metadata "name" and "version" must be strings' };
  }
  const fromPath = namingFromPath(handle);
  if (fromPath) return { ...fromPath, from: 'path' };
  return {
    problem:
      'no template name and version: give the .metadata "name" and "version" keys, or lay it out as NAME/VERSION/FILE or NAME-VERSION.EXT',
  };
}

// References: parse `repo:name[:version]` and check every component before any path is built from it.
import { TemplatesError } from '../errors.js';

export interface Reference {
  /** Absent when the text had one or two parts; resolution decides. */
  parts: string[];
  text: string;
}

/** One version of one template of one repository: the three names of a fully qualified reference. */
export interface VersionKey {
  repository: string;
  template: string;
  version: string;
}

const NAME = /^[A-Za-z0-9._+-]+$/;

/** A name safe to use as one component of a store file name: `[A-Za-z0-9._+-]`, never `.` or `..`. */
export function isValidName(name: string): boolean {
  return NAME.test(name) && name !== '.' && name !== '..';
}

export function parseReference(text: string): Reference {
  const parts = text.split(':');
  if (parts.length > 3 || text.length === 0) {
    throw new TemplatesError('BAD_REFERENCE', `bad reference ${JSON.stringify(text)}: expected repo:name[:version]`, {
      ref: text,
      hint: 'write it as repo:name or repo:name:version',
    });
  }
  for (const part of parts) {
    if (!isValidName(part)) {
      throw new TemplatesError(
        'BAD_REFERENCE',
        `bad reference ${JSON.stringify(text)}: ${JSON.stringify(part)} is not a valid name`,
        {
          ref: text,
          hint: 'names use only letters, digits and . _ + - (and are never . or ..)',
        },
      );
    }
  }
  return { parts, text };
}

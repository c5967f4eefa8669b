// virt-builder's native index (pure): one section per template, its newest stored version, in the grammar of its index-scan.l.
import type { VersionKey } from '../repository/reference.js';

/** A section name as virt-builder scans one: `[` then letters, digits, `-`, `.`, `_`, then `]`. */
const SECTION = /^[-A-Za-z0-9._]+$/;

export interface VirtBuilderTemplate {
  key: VersionKey;
  /** Seconds since the epoch: the revision (virt-builder takes the highest). */
  timestamp: number;
  /** The file, relative to the index's URL. */
  file: string;
  /** Virtual size of the disk, bytes. */
  size: number;
  /** The file's size when it is compressed (`.xz`), else undefined. */
  compressedSize?: number;
  /** Hex SHA-512 of the file as served. */
  sha512: string;
  arch: string;
  osinfo?: string;
}

/** The template's section name: `REPO.TEMPLATE`. */
const sectionName = (key: { repository: string; template: string }) => `${key.repository}.${key.template}`;

/** Why a template cannot have a section, or undefined when it can. */
function virtBuilderProblem(key: VersionKey): string | undefined {
  return SECTION.test(sectionName(key))
    ? undefined
    : `${JSON.stringify(sectionName(key))} cannot be a virt-builder section name`;
}

/** A field's value on one line: virt-builder's scanner ends a value at the newline. */
const oneLine = (text: string) => text.replace(/[\r\n]+/g, ' ');

/**
 * The index: a comment, then a section per template in name order. Two templates whose section names collide (`a.b`+`c`
 * and `a`+`b.c`) keep the first; the others are returned to be logged.
 */
export function virtBuilderIndex(templates: VirtBuilderTemplate[]): { text: string; leftOut: VirtBuilderTemplate[] } {
  const seen = new Set<string>();
  const leftOut: VirtBuilderTemplate[] = [];
  const sections: string[] = [];
  for (const t of [...templates].sort((a, b) => (sectionName(a.key) < sectionName(b.key) ? -1 : 1))) {
    const name = sectionName(t.key);
    if (seen.has(name) || virtBuilderProblem(t.key)) {
      leftOut.push(t);
      continue;
    }
    seen.add(name);
    const fields = [
      `[${name}]`,
      `name=${oneLine(`${t.key.repository}:${t.key.template}:${t.key.version}`)}`,
      ...(t.osinfo ? [`osinfo=${oneLine(t.osinfo)}`] : []),
      `arch=${oneLine(t.arch)}`,
      `file=${t.file}`,
      `checksum[sha512]=${t.sha512}`,
      'format=raw',
      `size=${t.size}`,
      ...(t.compressedSize !== undefined ? [`compressed_size=${t.compressedSize}`] : []),
      `revision=${Math.floor(t.timestamp)}`,
      `notes=${oneLine(`${t.key.repository}:${t.key.template}:${t.key.version}`)} from the templates cache host`,
      ' (template version as its name says; verified against its upstream digest when stored)',
    ];
    sections.push(fields.join('\n'));
  }
  const text = `# virt-builder index of a templates cache host: the newest stored version of each template.\n\n${sections.join('\n\n')}\n`;
  return { text, leftOut };
}

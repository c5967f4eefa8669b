// `templates index` writes virt-builder's native index beside the repository JSON: the newest raw version of each template.
import { join } from 'node:path';
import { type VirtBuilderTemplate, virtBuilderIndex } from '../catalogues/virt-builder.js';
import { hashFile } from '../util/hash-file.js';
import { writeIfChanged } from './candidate.js';
import type { IndexedVersion } from './repository-json.js';
import type { IndexState } from './state.js';

/** The index's file name in the directory: `uri=https://host/path/virt-builder.index` in a virt-builder repos.d file. */
export const VIRT_BUILDER_INDEX = 'virt-builder.index';

/**
 * Writes `virt-builder.index` (when it changed): one section per template, for its newest raw version, whose `.xz` is
 * the file. The `.xz`'s SHA-512 is taken once and kept in the state (`xzSha512`), so an unchanged image is not read
 * again. qcow2 images are not listed (their virtual size is not known here). Returns the refs left out because
 * virt-builder cannot take their names.
 */
export async function writeVirtBuilderIndex(
  root: string,
  repository: string,
  versions: IndexedVersion[],
  state: IndexState,
  signal?: AbortSignal,
): Promise<string[]> {
  const newest = new Map<string, IndexedVersion>();
  for (const v of versions) {
    const known = newest.get(v.template);
    if (!known || v.timestamp > known.timestamp || (v.timestamp === known.timestamp && v.version > known.version))
      newest.set(v.template, v);
  }
  const leftOut: string[] = [];
  const templates: VirtBuilderTemplate[] = [];
  for (const v of newest.values()) {
    const image = state.images[v.handle];
    // A qcow2's virtual size is not known here: virt-builder would size its disk wrong. Raw images only.
    if (!image || v.format !== 'raw') continue;
    image.xzSha512 ??= (await hashFile(join(root, `${v.handle}.xz`), ['sha512'], signal)).sha512;
    templates.push({
      key: { repository, template: v.template, version: v.version },
      timestamp: v.timestamp,
      file: `${v.handle.split('/').map(encodeURIComponent).join('/')}.xz`,
      size: image.size,
      compressedSize: image.compressedSize,
      sha512: image.xzSha512,
      arch: v.arch ?? 'x86_64',
      ...(v.osinfo ? { osinfo: v.osinfo } : {}),
    });
  }
  const { text, leftOut: unnamed } = virtBuilderIndex(templates);
  leftOut.push(...unnamed.map((t) => `${t.key.repository}:${t.key.template}:${t.key.version}`));
  await writeIfChanged(join(root, VIRT_BUILDER_INDEX), text);
  return leftOut;
}

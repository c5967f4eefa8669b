// `status --deep`: HEAD the newest version's image and `.hash` of each template on a server, and compare sizes with the primary.
import type { Context } from '../context.js';
import { redactUrl } from '../errors.js';
import { joinUrl } from '../providers/http.js';
import type { Repository } from '../repository/model.js';
import type { DeepCheck } from './model.js';

/** The newest version of each template with an http source: its ref and the primary URLs of image and hash (`.xz` forms first). */
export function newestFiles(repository: Repository): Array<{ ref: string; image: string[]; hash: string[] }> {
  const out: Array<{ ref: string; image: string[]; hash: string[] }> = [];
  for (const [name, template] of repository.templates) {
    if (!template.ok) continue;
    const newest = [...template.value.versions.values()]
      .flatMap((v) => (v.ok ? [v.value] : []))
      .sort((a, b) => b.timestamp - a.timestamp)[0];
    if (newest?.source.type !== 'http') continue;
    const at = (suffix: string) => joinUrl((newest.source as { baseurl: string }).baseurl, newest.handle, suffix);
    out.push({
      ref: `${repository.name}:${name}:${newest.name}`,
      image: [at('.xz'), at('')],
      hash: [at('.xz.hash'), at('.hash')],
    });
  }
  return out;
}

/** The size of the first of `urls` that answers 2xx to HEAD, with its URL; null when none does. */
async function headFirst(
  ctx: Context,
  urls: string[],
  signal: AbortSignal,
): Promise<{ url: string; size: number | null } | null> {
  for (const url of urls) {
    try {
      const response = await ctx.http.get(url, { method: 'HEAD', retries: 0, signal });
      response.body.destroy();
      if (response.status >= 200 && response.status < 300) return { url, size: response.size ?? null };
    } catch {
      // unreachable: absent as far as a fetch is concerned
    }
  }
  return null;
}

export type SizeMap = Map<string, number | null>;

/**
 * Checks each file on one server (`rewrite` maps a primary URL onto it); `primarySizes` (ref/file → size) is filled on
 * the primary and compared on mirrors.
 */
export async function deepCheck(
  ctx: Context,
  files: ReturnType<typeof newestFiles>,
  rewrite: (url: string) => string | undefined,
  primarySizes: SizeMap | undefined,
  signal: AbortSignal,
): Promise<DeepCheck[]> {
  const checks: DeepCheck[] = [];
  for (const file of files) {
    for (const kind of ['image', 'hash'] as const) {
      const urls = file[kind].map(rewrite).filter((url): url is string => url !== undefined);
      if (urls.length === 0) continue;
      const found = await headFirst(ctx, urls, signal);
      const key = `${file.ref}/${kind}`;
      const primarySize = primarySizes?.get(key) ?? null;
      const ok = found !== null && (primarySizes === undefined || primarySize === null || found.size === primarySize);
      checks.push({
        ref: file.ref,
        file: kind,
        url: redactUrl(found?.url ?? urls[0]!),
        present: found !== null,
        size: found?.size ?? null,
        primarySize: primarySizes ? primarySize : null,
        ok,
      });
    }
  }
  return checks;
}

// `templates index DIR --name REPO`: build or update a repository from a directory of images (docs/publishing.md).
import type { ChunkSizes } from '../../chunks/buzhash.js';
import { parseChunkSizes } from '../../chunks/sizes.js';
import { TemplatesError, ERROR_CODES } from '../../errors.js';
import { createContext } from '../../context.js';
import { indexDirectory } from '../../publish/index-directory.js';
import type { IndexFormat } from '../../publish/index-options.js';
import { indexRegistry } from '../../publish/index-registry.js';
import { signRepository } from '../../publish/sign.js';
import { readSecretKey } from '../../trust/keys.js';
import type { SecretKey } from '../../trust/minisign.js';
import { formatSize, parseSize } from '../../util/size.js';
import { stat } from 'node:fs/promises';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { parseCommand } from '../options.js';
import { passwordFd, passwordReader } from '../password.js';
import { createRenderer } from '../progress.js';

export const INDEX_HELP = `Usage: templates index DIR --name REPO [options]
       templates index --registry oci://HOST[:PORT][/PREFIX] --name REPO [--output FILE] [filters]

Turns a directory of raw and qcow2 images (plain or .xz) into a repository that templates and lago fetch
from. Next to each image it writes <handle>.xz (multi-block, so fetches decode on every core),
<handle>.zst (four times faster to unpack; fetches with zstd installed take it), <handle>.hash (SHA-1)
and <handle>.metadata; then the repository JSON, atomically. Re-running on an
unchanged directory reads and writes nothing but the listing. Names: the .metadata "name" and "version",
else NAME/VERSION/FILE, else NAME-VERSION.EXT. See docs/publishing.md.

  --name REPO              the repository's name (required)
  --base-url URL           serve the images from this http(s) URL (default: a "file" source at DIR)
  --mirror URL             a mirror serving a copy of DIR (repeatable; needs --base-url; docs/mirrors.md)
  --output FILE            the repository JSON (default: DIR/REPO.json)
  --registry oci://HOST[/PREFIX]  index the template artifacts of a registry instead (docs/oci.md):
                           oci sources, digests, sizes; manifests seen before are not read again
  --annotation K=V         (--registry) only manifests with this annotation (repeatable)
  --insecure               (--registry) plain HTTP to a registry that is not on loopback
  --include GLOB           only images whose handle matches (repeatable; a glob without / matches the file name)
  --exclude GLOB           leave out images whose handle matches (repeatable)
  --require-metadata KEY   only images whose metadata has KEY (repeatable)
  --arch ARCH              only images whose metadata "arch" is ARCH
  --threads N              xz threads (default 0: one per core)
  --block-size SIZE        xz block size (default 16M)
  --level N                xz preset 0-9 (default 6)
  --formats LIST           xz,zst (default) or xz: the compressed files written (docs/performance.md)
  --zstd-level N           zstd level 1-22 (default 19; always --long=27)
  --chunk-size MIN:AVG:MAX chunk sizes of each raw image's .caibx and the chunk store default.castr/
                           (casync's format, docs/delta.md; default 8K:32K:128K)
  --no-chunks              no .caibx and no chunk store (the .caibx files are removed)
  --prune-chunks           then remove the chunks no .caibx in DIR lists, if older than an hour
                           (under the directory's lock: safe while another index run waits)
  --sign KEY               sign the JSON (writes FILE.minisig; docs/trust.md) whenever it is written or has none
  --password-fd N          read an encrypted --sign key's password from descriptor N (else it is asked)
  --json                   print a JSON summary on stdout
  -q, --quiet              no progress output
  -h, --help               this help
Exit codes: 0, or the code of the first image that could not be indexed (docs/errors.md); the others
are indexed all the same.`;

const OPTIONS = {
  name: { type: 'string' },
  'base-url': { type: 'string' },
  mirror: { type: 'string', multiple: true },
  registry: { type: 'string' },
  annotation: { type: 'string', multiple: true },
  insecure: { type: 'boolean' },
  output: { type: 'string' },
  include: { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
  'require-metadata': { type: 'string', multiple: true },
  arch: { type: 'string' },
  threads: { type: 'string' },
  'block-size': { type: 'string' },
  level: { type: 'string' },
  formats: { type: 'string' },
  'zstd-level': { type: 'string' },
  'chunk-size': { type: 'string' },
  'no-chunks': { type: 'boolean' },
  'prune-chunks': { type: 'boolean' },
  sign: { type: 'string' },
  'password-fd': { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface IndexValues {
  name?: string;
  'base-url'?: string;
  output?: string;
  include?: string[];
  exclude?: string[];
  'require-metadata'?: string[];
  arch?: string;
  threads?: string;
  'block-size'?: string;
  level?: string;
  formats?: string;
  'zstd-level'?: string;
  'chunk-size'?: string;
  'no-chunks'?: boolean;
  'prune-chunks'?: boolean;
  mirror?: string[];
  registry?: string;
  annotation?: string[];
  insecure?: boolean;
  sign?: string;
  'password-fd'?: string;
  json?: boolean;
  quiet?: boolean;
  help?: boolean;
}

/** The --sign key, read (and its password asked) before any image is read. */
async function signingKey(values: IndexValues, io: CliIo): Promise<SecretKey | undefined> {
  return values.sign === undefined
    ? undefined
    : readSecretKey(values.sign, passwordReader(passwordFd(values['password-fd']), io.stderr, io.signal));
}

/** Signs the JSON when it was written, or has no signature yet; the path of the signature, or undefined. */
async function signOutput(key: SecretKey | undefined, output: string, written: boolean): Promise<string | undefined> {
  if (!key) return undefined;
  if (
    !written &&
    (await stat(`${output}.minisig`).then(
      () => true,
      () => false,
    ))
  )
    return undefined;
  return (await signRepository(output, key)).signature;
}

async function indexRegistryCommand(values: IndexValues, positionals: string[], io: CliIo): Promise<number> {
  if (positionals.length)
    throw new TemplatesError('USAGE', 'index --registry takes no directory', {
      hint: 'usage: templates index --registry oci://HOST --name REPO',
    });
  if (!values.name) throw new TemplatesError('USAGE', 'index: --name REPO is required');
  const annotations: Record<string, string> = {};
  for (const pair of values.annotation ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new TemplatesError('USAGE', `--annotation takes KEY=VALUE, not ${JSON.stringify(pair)}`);
    annotations[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const key = await signingKey(values, io);
  const summary = await indexRegistry({
    registry: values.registry!,
    name: values.name,
    output: values.output ?? `${values.name}.json`,
    include: values.include ?? [],
    exclude: values.exclude ?? [],
    annotations,
    ...(values.arch !== undefined ? { arch: values.arch } : {}),
    ...(values.insecure ? { insecure: true } : {}),
    context: createContext({ env: io.env }),
    signal: io.signal,
  });
  const signature = await signOutput(key, summary.output, summary.written);
  if (values.json) io.stdout.write(`${JSON.stringify({ ...summary, ...(signature ? { signature } : {}) })}\n`);
  else
    io.stdout.write(
      `${summary.output}: ${summary.versions} versions (${summary.fetched} manifests read, ${summary.reused} known)${summary.written ? '' : ', unchanged'}${signature ? ', signed' : ''}\n`,
    );
  return 0;
}

function integer(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value))
    throw new TemplatesError('USAGE', `${flag} takes a whole number, not ${JSON.stringify(value)}`, {
      hint: 'see: templates index --help',
    });
  return Number(value);
}

/** --formats and --zstd-level, as index and export take them. */
export function formatChoices(values: { formats?: string; 'zstd-level'?: string }): {
  formats?: IndexFormat[];
  zstdLevel?: number;
} {
  const zstdLevel = integer(values['zstd-level'], '--zstd-level');
  const formats = values.formats?.split(',').map((format) => format.trim()) as IndexFormat[] | undefined;
  return { ...(formats ? { formats } : {}), ...(zstdLevel !== undefined ? { zstdLevel } : {}) };
}

/** --prune-chunks keeps chunks younger than this: another tool (casync make) may not have written its index yet. */
const PRUNE_GRACE_MS = 3600_000;

/** --chunk-size and --no-chunks (one or the other). */
function chunkChoice(values: IndexValues): { chunkSizes?: ChunkSizes | false } {
  if (values['no-chunks'] && values['chunk-size'] !== undefined)
    throw new TemplatesError('USAGE', 'index: give --chunk-size or --no-chunks, not both');
  if (values['no-chunks']) return { chunkSizes: false };
  return values['chunk-size'] === undefined ? {} : { chunkSizes: parseChunkSizes(values['chunk-size']) };
}

export async function indexCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<IndexValues>(args, OPTIONS, 'index');
  if (values.help) return printed(io, `${INDEX_HELP}\n`);
  if (values.registry !== undefined) return indexRegistryCommand(values, positionals, io);
  if (positionals.length !== 1)
    throw new TemplatesError('USAGE', 'index: give exactly one directory', {
      hint: 'usage: templates index DIR --name REPO',
    });
  if (!values.name)
    throw new TemplatesError('USAGE', 'index: --name REPO is required', {
      hint: 'usage: templates index DIR --name REPO',
    });
  const blockBytes = values['block-size'] === undefined ? undefined : parseSize(values['block-size']);
  if (values['block-size'] !== undefined && blockBytes === undefined)
    throw new TemplatesError(
      'USAGE',
      `--block-size takes a size such as 16M, not ${JSON.stringify(values['block-size'])}`,
    );
  const threads = integer(values.threads, '--threads');
  const level = integer(values.level, '--level');
  const key = await signingKey(values, io);
  const renderer = await createRenderer(io.stderr, Boolean(values.quiet));
  let summary: Awaited<ReturnType<typeof indexDirectory>>;
  try {
    summary = await indexDirectory(positionals[0]!, {
      name: values.name,
      ...(values['base-url'] !== undefined ? { baseUrl: values['base-url'] } : {}),
      ...(values.mirror?.length ? { mirrors: values.mirror } : {}),
      ...(values.output !== undefined ? { output: values.output } : {}),
      include: values.include ?? [],
      exclude: values.exclude ?? [],
      requireMetadata: values['require-metadata'] ?? [],
      ...(values.arch !== undefined ? { arch: values.arch } : {}),
      ...(threads !== undefined ? { threads } : {}),
      ...(blockBytes !== undefined ? { blockBytes } : {}),
      ...(level !== undefined ? { level } : {}),
      ...formatChoices(values),
      ...chunkChoice(values),
      ...(values['prune-chunks'] ? { pruneChunks: { graceMs: PRUNE_GRACE_MS } } : {}),
      context: createContext({ env: io.env }),
      signal: io.signal,
      onProgress: (event) => renderer.onProgress(event),
    });
  } finally {
    renderer.stop();
  }
  for (const problem of summary.problems) io.stderr.write(`templates: ${problem.message} [${problem.code}]\n`);
  const signature = await signOutput(key, summary.output, summary.written);
  if (values.json) io.stdout.write(`${JSON.stringify({ ...summary, ...(signature ? { signature } : {}) })}\n`);
  else {
    const counts = (['compressed', 'verified', 'unchanged'] as const).map(
      (status) => [status, summary.images.filter((image) => image.status === status).length] as const,
    );
    const done = counts
      .filter(([, count]) => count > 0)
      .map(([status, count]) => `${count} ${status}`)
      .join(', ');
    io.stdout.write(
      `${summary.output}: ${summary.versions} versions of ${summary.templates} templates${done ? ` (${done})` : ''}, revision ${summary.revision}${summary.written ? '' : ', unchanged'}\n`,
    );
    if (summary.bytesIn)
      io.stdout.write(
        `read ${formatSize(summary.bytesIn)}, wrote ${formatSize(summary.bytesOut)} compressed in ${summary.seconds} s\n`,
      );
    if (summary.removed.length) io.stdout.write(`no longer listed: ${summary.removed.join(', ')}\n`);
    if (summary.chunks)
      io.stdout.write(
        `chunks: removed ${summary.chunks.removed} (${formatSize(summary.chunks.removedBytes)}), kept ${summary.chunks.kept}${summary.chunks.unreadable.length ? `; none removed: cannot read ${summary.chunks.unreadable.join(', ')}` : ''}\n`,
      );
    if (signature) io.stdout.write(`signed: ${signature}\n`);
  }
  const first = summary.problems[0];
  return first ? ERROR_CODES[first.code] : 0;
}

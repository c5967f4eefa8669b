// `templates push REF oci://HOST[:PORT]/NAME:TAG`: a stored template to an OCI registry; prints the digest reference.
import { TemplatesError } from '../../errors.js';
import { pushTemplate } from '../../manage/push.js';
import { formatSize } from '../../util/size.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { createRenderer } from '../progress.js';
import { setup } from '../setup.js';

export const PUSH_HELP = `Usage: templates push [options] REF oci://HOST[:PORT]/NAME[:TAG]

Pushes a stored template to an OCI registry as a template artifact: a config blob with its metadata
and digests, and one layer, the multi-block .xz of the raw image (the kept .xz, else compressed now).
Blobs the registry has already are not sent again. Prints oci://HOST/NAME@sha256:… (what
templates fetch can name). Plain HTTP only for a loopback registry, or with --insecure. See docs/oci.md.

  --containerdisk   push a KubeVirt containerDisk instead (an image whose layer holds /disk/disk.img,
                    the template as qcow2, owned by uid 107): KubeVirt boots it as a containerDisk volume
  --layer xz|zst    the layer's compression (default xz): zst is four times faster to unpack (the kept
                    .zst, else zstd -19 --long=27 now); templates fetch before zstd layers cannot read it
  --insecure        plain HTTP to a registry that is not on loopback
  --creds-file FILE registry credentials (docker config.json format), read first; else
                    $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json,
                    and "auth" entries of the config file
  --chunk-size MIB  layers larger than this go up in chunks of this size (default 64)
  -q, --quiet       no progress output
${COMMON_HELP}`;

type PushValues = CommonValues & {
  containerdisk?: boolean;
  layer?: string;
  insecure?: boolean;
  'creds-file'?: string;
  'chunk-size'?: string;
  quiet?: boolean;
};

export async function pushCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<PushValues>(
    args,
    {
      ...COMMON_OPTIONS,
      containerdisk: { type: 'boolean' },
      layer: { type: 'string' },
      insecure: { type: 'boolean' },
      'creds-file': { type: 'string' },
      'chunk-size': { type: 'string' },
      quiet: { type: 'boolean', short: 'q' },
    },
    'push',
  );
  if (values.help) return printed(io, `${PUSH_HELP}\n`);
  if (positionals.length !== 2)
    throw new TemplatesError('USAGE', 'push: give a stored template and an oci:// destination', {
      hint: 'usage: templates push REF oci://HOST/NAME:TAG',
    });
  if (values.layer !== undefined && values.layer !== 'xz' && values.layer !== 'zst')
    throw new TemplatesError('USAGE', `--layer takes xz or zst, not ${JSON.stringify(values.layer)}`);
  const chunk = values['chunk-size'] === undefined ? undefined : Number(values['chunk-size']);
  if (chunk !== undefined && !(Number.isInteger(chunk) && chunk >= 1))
    throw new TemplatesError(
      'USAGE',
      `--chunk-size takes a whole number of MiB, not ${JSON.stringify(values['chunk-size'])}`,
    );
  const { store, repositories, context } = await setup(
    values,
    io,
    values['creds-file'] ? { TEMPLATES_CREDS_FILE: values['creds-file'] } : {},
  );
  const renderer = await createRenderer(io.stderr, Boolean(values.quiet));
  try {
    const result = await pushTemplate(positionals[0]!, positionals[1]!, {
      store,
      repositories,
      context,
      signal: io.signal,
      ...(values.insecure ? { insecure: true } : {}),
      ...(values.containerdisk ? { containerDisk: true } : {}),
      ...(values.layer ? { layer: values.layer as 'xz' | 'zst' } : {}),
      ...(chunk ? { chunkBytes: chunk * 1024 * 1024 } : {}),
      onProgress: (event) =>
        renderer.onProgress({ ref: event.ref, phase: 'compress', bytes: event.bytes, total: event.total }),
    });
    if (values.json) io.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      io.stdout.write(`${result.reference}\n`);
      io.stderr.write(
        `${result.ref}: ${result.uploaded} blobs sent (${formatSize(result.uploadedBytes)}), ${result.mounted} mounted, ${result.skipped} already there\n`,
      );
    }
    return 0;
  } finally {
    renderer.stop();
  }
}

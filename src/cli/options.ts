// Shared CLI options: parsed with node:util parseArgs; a bad flag is a USAGE error.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TemplatesError } from '../errors.js';

export const COMMON_OPTIONS = {
  repo: { type: 'string', multiple: true },
  repos: { type: 'string', multiple: true },
  store: { type: 'string' },
  config: { type: 'string' },
  offline: { type: 'boolean' },
  refresh: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'lock-wait': { type: 'string' },
  'trusted-key': { type: 'string', multiple: true },
  'allow-rollback': { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

/**
 * git-style: the shared options may come before the command (`templates --store DIR list`). Moves the leading ones after
 * the command, where each command's parser reads them; `--version`/`--help` alone, or no command, are left as they are.
 */
export function commandFirst(argv: string[]): string[] {
  const lead: string[] = [];
  let i = 0;
  for (; i < argv.length && argv[i]!.startsWith('--') && argv[i] !== '--help' && argv[i] !== '--version'; i++) {
    const arg = argv[i]!;
    lead.push(arg);
    const name = arg.slice(2);
    const option = (COMMON_OPTIONS as Record<string, { type: string }>)[name];
    if (option?.type === 'string' && i + 1 < argv.length) lead.push(argv[++i]!);
  }
  return lead.length && i < argv.length ? [argv[i]!, ...lead, ...argv.slice(i + 1)] : argv;
}

export const COMMON_HELP = `Options:
  --repo PATH|URL   a repository JSON file or http(s) URL (repeatable)
  --repos DIR       a directory whose *.json files are repositories (repeatable)
  --store DIR       the store (default: $TEMPLATES_STORE, else $XDG_CACHE_HOME/templates)
  --config FILE     the config file (default: $TEMPLATES_CONFIG, else $XDG_CONFIG_HOME/templates/config.json)
  --offline         never use the network: repositories from the store's cached copies, images from the store
  --refresh         ask the servers for repository JSON even when the cached copy is younger than its TTL
  --json            machine-readable output, one JSON object per line
  --lock-wait SECS  how long to wait for another process's lock (default 3600)
  --trusted-key KEY a minisign public key (a .pub file or its RW… line) every repository loaded must
                    be signed with (repeatable; the config's "trust" names keys per repository)
  --allow-rollback  accept a signed repository older than the one this store accepted before
  -h, --help        this help
Environment: TEMPLATES_REPOS (colon-separated files, directories, URLs), TEMPLATES_STORE,
  TEMPLATES_CONFIG, TEMPLATES_OFFLINE=1, HTTP_PROXY / HTTPS_PROXY / NO_PROXY, and the settings
  that 'templates config' lists (a flag beats the environment, which beats the config file).
Exit codes: see docs/errors.md.`;

export interface CommonValues {
  repo?: string[];
  repos?: string[];
  store?: string;
  config?: string;
  offline?: boolean;
  refresh?: boolean;
  json?: boolean;
  help?: boolean;
  'lock-wait'?: string;
  'trusted-key'?: string[];
  'allow-rollback'?: boolean;
  /** fetch's --keep-xz (the keepXz setting). */
  'keep-xz'?: boolean;
}

export interface Parsed<V> {
  values: V;
  positionals: string[];
}

export function parseCommand<V extends object>(
  args: string[],
  options: ParseArgsConfig['options'],
  command: string,
): Parsed<V> {
  try {
    const { values, positionals } = parseArgs({ args, options: options ?? {}, allowPositionals: true, strict: true });
    return { values: values as unknown as V, positionals };
  } catch (error) {
    throw new TemplatesError(
      'USAGE',
      `${command}: ${(error as Error).message}`,
      { hint: `see: templates ${command} --help` },
      { cause: error },
    );
  }
}

export function seconds(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0)
    throw new TemplatesError('USAGE', `${flag} takes a number of seconds, not ${JSON.stringify(value)}`);
  return parsed;
}

/**
 * A flag whose value may be left out (`--locked [FILE]`): `--flag=V` and `--flag V` (V looking like a file: ends in .json
 * or holds a /) are kept; a bare `--flag` gets `fallback`, so that parseArgs can take it as a string option.
 */
export function optionalValue(args: string[], flag: string, fallback: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    out.push(arg);
    if (arg !== flag) continue;
    const next = args[i + 1];
    if (next !== undefined && !next.startsWith('-') && (/\.json$/i.test(next) || next.includes('/')))
      out.push(args[++i]!);
    else out.push(fallback);
  }
  return out;
}

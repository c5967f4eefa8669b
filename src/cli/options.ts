// Shared CLI options: parsed with node:util parseArgs; a bad flag is a USAGE error.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TemplatesError } from '../errors.js';

export const COMMON_OPTIONS = {
  repo: { type: 'string', multiple: true },
  repos: { type: 'string', multiple: true },
  store: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'lock-wait': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export const COMMON_HELP = `Options:
  --repo PATH|URL   a repository JSON file or http(s) URL (repeatable)
  --repos DIR       a directory whose *.json files are repositories (repeatable)
  --store DIR       the store (default: $TEMPLATES_STORE, else $XDG_CACHE_HOME/templates)
  --json            machine-readable output, one JSON object per line
  --lock-wait SECS  how long to wait for another process's lock (default 3600)
  -h, --help        this help
Environment: TEMPLATES_REPOS (colon-separated files, directories, URLs), TEMPLATES_STORE,
  HTTP_PROXY / HTTPS_PROXY / NO_PROXY, TEMPLATES_LOCK_STALE_SECONDS (10),
  TEMPLATES_PARTIAL_MAX_AGE_SECONDS (86400: older interrupted downloads are not resumed),
  TEMPLATES_MAX_IMAGE_BYTES (1 TiB: larger decoded images are refused).
Exit codes: see docs/errors.md.`;

export interface CommonValues {
  repo?: string[];
  repos?: string[];
  store?: string;
  json?: boolean;
  help?: boolean;
  'lock-wait'?: string;
}

export interface Parsed<V> {
  values: V;
  positionals: string[];
}

export function parseCommand<V extends CommonValues>(args: string[], options: ParseArgsConfig['options'], command: string): Parsed<V> {
  try {
    const { values, positionals } = parseArgs({ args, options: options ?? {}, allowPositionals: true, strict: true });
    return { values: values as unknown as V, positionals };
  } catch (error) {
    throw new TemplatesError('USAGE', `${command}: ${(error as Error).message}`, { hint: `see: templates ${command} --help` }, { cause: error });
  }
}

export function seconds(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new TemplatesError('USAGE', `${flag} takes a number of seconds, not ${JSON.stringify(value)}`);
  return parsed * 1000;
}

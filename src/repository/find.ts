// Find the configured repositories: repository files and URLs, directories of them, and mixed lists, keyed by name.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createContext } from '../context.js';
import { TemplatesError, isTemplatesError } from '../errors.js';
import type { Repository } from './model.js';
import { loadRepository, type LoadOptions } from './load.js';
import { RepositorySet } from './set.js';
import { checkObject, checkSignal, checkStrings } from '../util/args.js';

export { RepositorySet };

export interface FindOptions extends LoadOptions {
  /** Repository files or URLs; an unreadable or invalid one is an error. */
  repos?: string[];
  /** Directories whose `*.json` files are repositories; an invalid file there is a warning. */
  repoDirs?: string[];
  /** Files, directories and URLs, told apart as TEMPLATES_REPOS entries are (the CLI's settings; splitRepoList splits one). */
  locations?: string[];
}

/**
 * Splits TEMPLATES_REPOS: colon-separated paths, directories and URLs. A colon that belongs to a URL
 * (`http://host:port/…`) does not split.
 */
export function splitRepoList(value: string): string[] {
  const out: string[] = [];
  const pieces = value.split(':');
  for (let i = 0; i < pieces.length; i++) {
    let piece = pieces[i] ?? '';
    const next = pieces[i + 1];
    if (/^(https?|file)$/i.test(piece) && next?.startsWith('//')) {
      piece = `${piece}:${next}`;
      i++;
      const port = pieces[i + 1];
      if (port !== undefined && /^\d+(\/|$)/.test(port)) {
        piece = `${piece}:${port}`;
        i++;
      }
    }
    if (piece) out.push(piece);
  }
  return out;
}

function checkFindOptions(options: FindOptions): void {
  checkObject('loadRepositories', 'options', options);
  for (const key of ['repos', 'repoDirs', 'locations'] as const) {
    if (options[key] !== undefined) checkStrings('loadRepositories', key, options[key]);
  }
  checkSignal('loadRepositories', options.signal);
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function jsonFilesIn(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir))
      .filter((name) => name.endsWith('.json'))
      .sort()
      .map((name) => join(dir, name));
  } catch (error) {
    throw new TemplatesError(
      'REPO_NOT_FOUND',
      `${dir}: cannot read repository directory: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      {
        path: dir,
        hint: 'check the --repos directory',
      },
      { cause: error },
    );
  }
}

/** Every configured repository location: files and URLs as given, then the `*.json` files of each directory. */
export async function repositoryLocations(
  options: Pick<FindOptions, 'repos' | 'repoDirs' | 'locations'>,
): Promise<Array<{ location: string; inDirectory: boolean }>> {
  const explicit: string[] = [...(options.repos ?? [])];
  const dirs: string[] = [...(options.repoDirs ?? [])];
  for (const entry of options.locations ?? []) {
    if (/^[a-z]+:\/\//i.test(entry) || !(await isDirectory(entry))) explicit.push(entry);
    else dirs.push(entry);
  }
  const inDirs: string[] = [];
  for (const dir of dirs) inDirs.push(...(await jsonFilesIn(dir)));
  return [
    ...explicit.map((location) => ({ location, inDirectory: false })),
    ...inDirs.map((location) => ({ location, inDirectory: true })),
  ];
}

/** Loads every repository given, in the order given (the first of two with one name wins). */
export async function loadRepositories(findOptions: FindOptions = {}): Promise<RepositorySet> {
  checkFindOptions(findOptions);
  const options = { ...findOptions, context: findOptions.context ?? createContext() };
  const repositories: Repository[] = [];
  for (const { location, inDirectory } of await repositoryLocations(options)) {
    if (!inDirectory) {
      repositories.push(await loadRepository(location, options));
      continue;
    }
    try {
      repositories.push(await loadRepository(location, options));
    } catch (error) {
      if (!isTemplatesError(error) || error.code === 'ABORTED') throw error;
      options.onWarning?.(`skipping ${location}: ${error.message}`);
    }
  }
  return new RepositorySet(repositories, (first, ignored) => {
    options.onWarning?.(
      `repository "${ignored.name}" from ${ignored.location} ignored: ${first.location} has the same name`,
    );
  });
}

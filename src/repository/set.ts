// RepositorySet: the loaded repositories by name, as loadRepositories returns them and every resolving function takes them.
import { badArgument } from '../util/args.js';
import type { Repository, VersionSpec } from './model.js';
import type { VersionKey } from './reference.js';

export class RepositorySet implements Iterable<Repository> {
  readonly #byName = new Map<string, Repository>();

  /** In the order given; of two with the same name the first is kept and `onDuplicate` is told of the other. */
  constructor(repositories: Iterable<Repository> = [], onDuplicate?: (kept: Repository, ignored: Repository) => void) {
    for (const repository of repositories) {
      const first = this.#byName.get(repository.name);
      if (first) onDuplicate?.(first, repository);
      else this.#byName.set(repository.name, repository);
    }
  }

  get size(): number {
    return this.#byName.size;
  }

  get(name: string): Repository | undefined {
    return this.#byName.get(name);
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  /** The listed version `key` names, when its repository lists it and it parsed (a stored entry's upstream). */
  version(key: VersionKey): VersionSpec | undefined {
    const template = this.#byName.get(key.repository)?.templates.get(key.template);
    const version = template?.ok ? template.value.versions.get(key.version) : undefined;
    return version?.ok ? version.value : undefined;
  }

  names(): string[] {
    return [...this.#byName.keys()];
  }

  list(): Repository[] {
    return [...this.#byName.values()];
  }

  [Symbol.iterator](): Iterator<Repository> {
    return this.#byName.values();
  }

  /**
   * The set a caller passed: a RepositorySet as it is, an array of repositories (from loadRepository) made into
   * one; anything else is a USAGE error naming `fn`.
   */
  static from(value: unknown, fn: string): RepositorySet {
    if (value instanceof RepositorySet) return value;
    if (Array.isArray(value) && value.every(isRepository)) return new RepositorySet(value);
    throw badArgument(
      fn,
      'repositories',
      'the RepositorySet that loadRepositories() returns (or an array of loaded repositories)',
      value,
      'pass the set whole: const repositories = await loadRepositories({ repos: [...] })',
    );
  }
}

function isRepository(value: unknown): value is Repository {
  const candidate = value as Partial<Repository> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.name === 'string' &&
    candidate.templates instanceof Map
  );
}

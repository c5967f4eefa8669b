// A Map whose values are parsed from raw input the first time they are read, in the raw input's order.

const PENDING = Symbol('pending');

/**
 * A cache hit in a repository of thousands of versions reads one template; parsing only that one
 * keeps the hit's cost independent of the repository's size. Every read (get, iteration, size)
 * sees the same values an eager parse would give.
 */
export class LazyMap<K, V> extends Map<K, V> {
  readonly #raw: Map<K, unknown>;
  readonly #parse: (key: K, raw: unknown) => V;

  constructor(raw: Iterable<[K, unknown]>, parse: (key: K, raw: unknown) => V) {
    super();
    this.#raw = new Map(raw);
    this.#parse = parse;
    // Keys go in now, in order; values replace the placeholder in place, so order never changes.
    for (const key of this.#raw.keys()) super.set(key, PENDING as V);
  }

  override get(key: K): V | undefined {
    const value = super.get(key);
    if (value !== PENDING) return value;
    const parsed = this.#parse(key, this.#raw.get(key));
    super.set(key, parsed);
    this.#raw.delete(key);
    return parsed;
  }

  /** Parses every value not read yet. */
  parseAll(): this {
    for (const key of [...this.#raw.keys()]) this.get(key);
    return this;
  }

  override set(key: K, value: V): this {
    this.#raw.delete(key);
    return super.set(key, value);
  }

  override delete(key: K): boolean {
    this.#raw.delete(key);
    return super.delete(key);
  }

  override forEach(callback: (value: V, key: K, map: Map<K, V>) => void, thisArg?: unknown): void {
    this.parseAll();
    super.forEach(callback, thisArg);
  }

  override entries(): MapIterator<[K, V]> {
    return this.parseAll() && super.entries();
  }

  override values(): MapIterator<V> {
    return this.parseAll() && super.values();
  }

  override [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }
}

/** `{ ...base, ...extra }` that keeps base's getters as getters: a spread would read them (parsing every template). */
export function extend<T extends object, U extends object>(base: T, extra: U): T & U {
  const copy = Object.defineProperties({}, Object.getOwnPropertyDescriptors(base));
  return Object.defineProperties(copy, Object.getOwnPropertyDescriptors(extra)) as T & U;
}

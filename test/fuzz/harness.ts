// The fuzz tier's harness (fast-check): each parser of untrusted input returns a value or throws a TemplatesError, quickly.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { it } from 'vitest';
import { isTemplatesError } from '../../src/errors.js';

/** Cases per parser in `npm test`; `npm run fuzz -- --minutes N` runs each for its share of N minutes instead. */
const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const MINUTES = Number(process.env.FUZZ_MINUTES ?? 0);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/** Parsers in the long run share its minutes (set by scripts/fuzz.mjs). */
const SHARE = Number(process.env.FUZZ_SHARE ?? 1);
/** One call may take this long at most: a parser never hangs on its input. */
const CALL_MS = 2000;

const REGRESSIONS = join(import.meta.dirname, 'regressions');

/** Inputs are kept as JSON: a Buffer as `{"base64": …}`. */
const encode = (value: unknown) =>
  JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer'
      ? { base64: Buffer.from((v as { data: number[] }).data).toString('base64') }
      : v,
  );
const decode = (text: string): unknown =>
  JSON.parse(text, (_key, v: unknown) =>
    v && typeof v === 'object' && typeof (v as { base64?: unknown }).base64 === 'string'
      ? Buffer.from((v as { base64: string }).base64, 'base64')
      : v,
  );

function regressions<T>(name: string): T[] {
  try {
    return (JSON.parse(readFileSync(join(REGRESSIONS, `${name}.json`), 'utf8')) as string[]).map(
      (text) => decode(text) as T,
    );
  } catch {
    return [];
  }
}

function keep(name: string, input: unknown): void {
  const path = join(REGRESSIONS, `${name}.json`);
  let kept: string[] = [];
  try {
    kept = JSON.parse(readFileSync(path, 'utf8')) as string[];
  } catch {
    // none yet
  }
  kept.push(encode(input));
  writeFileSync(path, `${JSON.stringify(kept, null, 2)}\n`);
}

/**
 * Checks `call` over `runs` inputs of `arbitrary` (and `examples`): each returns, or throws a TemplatesError, within
 * CALL_MS. Rejects with fast-check's report (seed, path, counterexample) otherwise; `onFailure` hears the input.
 */
export async function checkParser<T>(
  name: string,
  arbitrary: fc.Arbitrary<T>,
  call: (input: T) => unknown,
  options: { runs?: number; examples?: T[]; onFailure?: (input: T) => void; callMs?: number } = {},
): Promise<void> {
  let failing: T | undefined;
  const limit = options.callMs ?? CALL_MS;
  const property = fc.asyncProperty(arbitrary, async (input) => {
    const started = performance.now();
    try {
      await call(input);
    } catch (error) {
      if (!isTemplatesError(error)) {
        failing = input;
        throw error;
      }
    }
    const ms = performance.now() - started;
    if (ms > limit) {
      failing = input;
      throw new Error(`${name}: one call took ${Math.round(ms)} ms`);
    }
  });
  try {
    await fc.assert(property, {
      examples: (options.examples ?? []).map((input) => [input] as [T]),
      ...(SEED !== undefined ? { seed: SEED } : {}),
      ...(MINUTES
        ? {
            numRuns: Number.MAX_SAFE_INTEGER,
            interruptAfterTimeLimit: (MINUTES * 60_000) / SHARE,
            markInterruptAsFailure: false,
          }
        : { numRuns: options.runs ?? RUNS }),
    });
  } catch (error) {
    if (failing !== undefined) options.onFailure?.(failing);
    throw error;
  }
}

/**
 * A test: checkParser over every input `arbitrary` makes and every input kept in `regressions/NAME.json`. In the long
 * run (FUZZ_RECORD=1, npm run fuzz) a failing input is kept there, to be replayed by every later run.
 */
export function fuzz<T>(name: string, arbitrary: fc.Arbitrary<T>, call: (input: T) => unknown): void {
  const timeout = MINUTES ? (MINUTES * 60_000) / SHARE + 60_000 : 120_000;
  it(
    name,
    () =>
      checkParser(name, arbitrary, call, {
        examples: regressions<T>(name),
        ...(process.env.FUZZ_RECORD === '1' ? { onFailure: (input: T) => keep(name, input) } : {}),
      }),
    timeout,
  );
}

// The fuzz harness itself: it fails on an untyped error and on a call that takes too long, and passes typed errors.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TemplatesError } from '../../src/errors.js';
import { checkParser } from './harness.js';

describe('fuzz harness', () => {
  it('passes a parser that returns or throws TemplatesError', async () => {
    await expect(
      checkParser(
        'typed',
        fc.string(),
        (text) => {
          if (text.length % 2) throw new TemplatesError('USAGE', 'odd');
          return text;
        },
        { runs: 200 },
      ),
    ).resolves.toBeUndefined();
  });

  it('fails on any other error, and hands over the input that caused it', async () => {
    let kept: string | undefined;
    const run = checkParser(
      'untyped',
      fc.string({ minLength: 1 }),
      (text) => text.charCodeAt(0) > -1 && JSON.parse(`{${text}`),
      {
        runs: 200,
        onFailure: (input) => {
          kept = input;
        },
      },
    );
    const error = (await run.catch((e: unknown) => e)) as Error;
    expect(error.message).toMatch(/Property failed/);
    // fast-check reports the parser's own error as the cause: a SyntaxError, not a TemplatesError.
    expect(error.cause).toBeInstanceOf(SyntaxError);
    expect(typeof kept).toBe('string');
  });

  it('fails on a call that takes too long', async () => {
    const slow = () => new Promise((resolve) => setTimeout(resolve, 30));
    const error = (await checkParser('slow', fc.nat(), slow, { runs: 3, callMs: 10 }).catch(
      (e: unknown) => e,
    )) as Error;
    expect((error.cause as Error).message).toMatch(/slow: one call took \d+ ms/);
  });
});

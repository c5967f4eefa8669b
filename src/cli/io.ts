// What a CLI command gets from the process: streams, environment and the signal that aborts it.
import { TemplatesError, isTemplatesError } from '../errors.js';

export interface CliIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: Record<string, string | undefined>;
  signal: AbortSignal;
}

/** Turns any failure into a TemplatesError (unexpected ones become INTERNAL). */
export function asTemplatesError(error: unknown): TemplatesError {
  if (isTemplatesError(error)) return error;
  return new TemplatesError('INTERNAL', `unexpected error: ${(error as Error)?.stack ?? String(error)}`, { hint: 'please report this as a bug' }, { cause: error });
}

/** Prints an error: one line on stderr, and with --json also an object on stdout. Returns its exit code. */
export function report(io: CliIo, error: unknown, json: boolean, ref?: string): number {
  const failure = asTemplatesError(error);
  io.stderr.write(`templates: ${failure.toLine()} [${failure.code}]\n`);
  if (json) io.stdout.write(`${JSON.stringify({ ...(ref ? { ref } : {}), error: failure.toJSON() })}\n`);
  return failure.exitCode;
}

// What a CLI command gets from the process: streams, environment and the signal that aborts it.
import { asTemplatesError } from '../errors.js';

export { asTemplatesError };

export interface CliIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: Record<string, string | undefined>;
  signal: AbortSignal;
}

/** Prints an error: one line on stderr, and with --json also an object on stdout. Returns its exit code. */
export function report(io: CliIo, error: unknown, json: boolean, ref?: string): number {
  const failure = asTemplatesError(error);
  io.stderr.write(`templates: ${failure.toLine()} [${failure.code}]\n`);
  if (json) io.stdout.write(`${JSON.stringify({ ...(ref ? { ref } : {}), error: failure.toJSON() })}\n`);
  return failure.exitCode;
}

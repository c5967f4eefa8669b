// What a CLI command gets from the process: streams, environment and the signal that aborts it.
import { asTemplatesError } from '../errors.js';

export interface CliIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: Record<string, string | undefined>;
  signal: AbortSignal;
}

/** Writes text to stdout or stderr; a progress renderer's print keeps it clear of the bars. */
export type Print = (text: string, to: 'stdout' | 'stderr') => void;

/** Prints an error: one line on stderr, and with --json also an object on stdout. Returns its exit code. */
export function report(
  io: CliIo,
  error: unknown,
  json: boolean,
  ref?: string,
  print: Print = (text, to) => void io[to].write(text),
): number {
  const failure = asTemplatesError(error);
  print(`templates: ${failure.toLine()} [${failure.code}]\n`, 'stderr');
  if (json) print(`${JSON.stringify({ ...(ref ? { ref } : {}), error: failure.toJSON() })}\n`, 'stdout');
  return failure.exitCode;
}

/** Writes `text` to stdout and returns exit code 0: what `--help` and the plain outputs of commands end with. */
export function printed(io: Pick<CliIo, 'stdout'>, text: string): 0 {
  io.stdout.write(text);
  return 0;
}

// A secret key's password: read from a file descriptor (--password-fd N, first line), else asked on the terminal without echo.
import { readFileSync } from 'node:fs';
import { TemplatesError } from '../errors.js';

/** `--password-fd N`, checked. */
export function passwordFd(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value))
    throw new TemplatesError('USAGE', `--password-fd takes a file descriptor number, not ${JSON.stringify(value)}`);
  return Number(value);
}

/** Reads the first line from `fd`. */
function fromFd(fd: number): string {
  try {
    return readFileSync(fd, 'utf8').split(/\r?\n/)[0]!;
  } catch (error) {
    throw new TemplatesError(
      'USAGE',
      `--password-fd ${fd}: cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      { hint: 'open the descriptor, e.g. 3<password-file' },
      { cause: error },
    );
  }
}

/** Asks on the terminal (stdin), echoing nothing. */
function ask(prompt: string, stderr: NodeJS.WriteStream, signal: AbortSignal): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    return Promise.reject(
      new TemplatesError(
        'KEY_INVALID',
        'the secret key is encrypted and there is no terminal to ask for its password',
        {
          hint: 'pass --password-fd N with the password on descriptor N (e.g. 3<file), or use a key written with --no-password',
        },
      ),
    );
  }
  return new Promise((resolve, reject) => {
    let typed = '';
    stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (error?: unknown) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      signal.removeEventListener('abort', onAbort);
      stderr.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onAbort = () => done(signal.reason);
    const onData = (text: string) => {
      for (const char of text) {
        if (char === '\r' || char === '\n') return done();
        if (char === '\u0003') return done(new TemplatesError('ABORTED', 'interrupted'));
        if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
        else typed += char;
      }
    };
    stdin.on('data', onData);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The password for an existing key: from `fd` when given, else asked. */
export function passwordReader(
  fd: number | undefined,
  stderr: NodeJS.WriteStream,
  signal: AbortSignal,
): () => Promise<string> {
  return async () => (fd !== undefined ? fromFd(fd) : ask('Password: ', stderr, signal));
}

/** The password for a new key: from `fd`, else asked twice (they must match). */
export async function newPassword(
  fd: number | undefined,
  stderr: NodeJS.WriteStream,
  signal: AbortSignal,
): Promise<string> {
  if (fd !== undefined) return fromFd(fd);
  const first = await ask('Password: ', stderr, signal);
  const second = await ask('Password (again): ', stderr, signal);
  if (first !== second)
    throw new TemplatesError('USAGE', 'the passwords differ', { hint: 'run templates keygen again' });
  return first;
}

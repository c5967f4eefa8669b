// `templates keygen --output KEY`: a minisign key pair (KEY, secret; KEY.pub) for signing repositories.
import { resolve } from 'node:path';
import { TemplatesError } from '../../errors.js';
import { writeKeyPair } from '../../trust/keys.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { parseCommand } from '../options.js';
import { newPassword, passwordFd } from '../password.js';

export const KEYGEN_HELP = `Usage: templates keygen --output KEY [--no-password] [--password-fd N] [--force]

Writes a minisign key pair: KEY, the secret key (mode 0600, encrypted with a password unless
--no-password), and KEY.pub, the public key. minisign reads both (minisign -S -s KEY, minisign -V -p KEY.pub),
and templates sign reads keys minisign -G wrote. Prints the public key (RW…) for the config's "trust".

  --output KEY      where to write the secret key (KEY.pub beside it)
  --no-password     leave the secret key unencrypted (like minisign -G -W): for CI secrets stores
  --password-fd N   read the password from descriptor N (e.g. 3<file) instead of asking twice
  --force           replace existing key files
  --json            print {"keyId","publicKey","secretKey","publicKeyFile"}`;

type Values = {
  output?: string;
  'no-password'?: boolean;
  'password-fd'?: string;
  force?: boolean;
  json?: boolean;
  help?: boolean;
};

export async function keygenCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<Values>(
    args,
    {
      output: { type: 'string' },
      'no-password': { type: 'boolean' },
      'password-fd': { type: 'string' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    'keygen',
  );
  if (values.help) return printed(io, `${KEYGEN_HELP}\n`);
  if (!values.output || positionals.length)
    throw new TemplatesError('USAGE', 'keygen: give --output KEY and nothing else', {
      hint: 'usage: templates keygen --output KEY',
    });
  const fd = passwordFd(values['password-fd']);
  const password = values['no-password'] ? undefined : await newPassword(fd, io.stderr, io.signal);
  const path = resolve(values.output);
  const pair = await writeKeyPair(path, password, Boolean(values.force));
  if (values.json)
    io.stdout.write(
      `${JSON.stringify({ keyId: pair.keyId, publicKey: pair.publicKey, secretKey: path, publicKeyFile: `${path}.pub` })}\n`,
    );
  else {
    io.stdout.write(`${pair.publicKey}\n`);
    io.stderr.write(
      `key ${pair.keyId}: secret key ${path}${password === undefined ? ' (unencrypted)' : ''}, public key ${path}.pub\n`,
    );
  }
  return 0;
}

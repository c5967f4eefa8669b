// `templates sign REPO.json --key KEY`: writes REPO.json.minisig, which minisign -V and templates verify.
import { resolve } from 'node:path';
import { TemplatesError } from '../../errors.js';
import { signRepository } from '../../publish/sign.js';
import { readSecretKey } from '../../trust/keys.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { parseCommand } from '../options.js';
import { passwordFd, passwordReader } from '../password.js';

export const SIGN_HELP = `Usage: templates sign REPO.json... --key KEY [--password-fd N]

Signs each repository JSON as it is on disk: writes REPO.json.minisig (minisign's format, prehashed
Ed25519) with a trusted comment naming the signing time, the repository and its revision. Publish it
beside the JSON; minisign -Vm REPO.json -P RW… verifies it too. Sign again after every change.

  --key KEY         the secret key (templates keygen or minisign -G)
  --password-fd N   read an encrypted key's password from descriptor N (else it is asked)
  --json            one {"signature","keyId","repository","revision","timestamp"} per file`;

type Values = { key?: string; 'password-fd'?: string; json?: boolean; help?: boolean };

export async function signCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand<Values>(
    args,
    {
      key: { type: 'string' },
      'password-fd': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    'sign',
  );
  if (values.help) return printed(io, `${SIGN_HELP}\n`);
  if (!values.key || positionals.length === 0)
    throw new TemplatesError('USAGE', 'sign: give REPO.json and --key KEY', {
      hint: 'usage: templates sign REPO.json --key KEY',
    });
  const secret = await readSecretKey(
    values.key,
    passwordReader(passwordFd(values['password-fd']), io.stderr, io.signal),
  );
  for (const file of positionals) {
    const signed = await signRepository(resolve(file), secret);
    if (values.json) io.stdout.write(`${JSON.stringify(signed)}\n`);
    else io.stdout.write(`${signed.signature}\n`);
  }
  return 0;
}

// A self-signed certificate made by openssl for a test's own servers (serve --tls-cert, a registry's token issuer).
import { join } from 'node:path';
import { execa } from 'execa';

/** `DIR/NAME.pem` and `DIR/NAME.key`: RSA for 127.0.0.1 (subjectAltName), or an EC P-256 key for signing tokens. */
export async function selfSigned(
  dir: string,
  name: string,
  options: { ec?: boolean } = {},
): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  const algorithm = options.ec ? ['ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['rsa:2048'];
  const san = options.ec ? [] : ['-addext', 'subjectAltName=IP:127.0.0.1'];
  await execa('openssl', [
    'req',
    '-x509',
    '-newkey',
    ...algorithm,
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    ...san,
  ]);
  return { cert, key };
}

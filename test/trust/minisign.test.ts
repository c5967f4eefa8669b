// minisign's formats and BLAKE2b (pure): RFC 7693 vectors, signatures that verify and fail as they should, key files, comments.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { blake2b } from '../../src/trust/blake2b.js';
import { formatComment, parseComment } from '../../src/trust/comment.js';
import {
  formatPublicKey,
  formatSecretKey,
  generateSecretKey,
  keyId,
  parsePublicKey,
  parseSecretKey,
  signMessage,
  verifyMessage,
} from '../../src/trust/minisign.js';
import { trustedKeys, NO_TRUST } from '../../src/trust/policy.js';

describe('BLAKE2b', () => {
  it('matches RFC 7693 and Node for BLAKE2b-512, and the known BLAKE2b-256 of the empty string', () => {
    expect(blake2b(Buffer.from('abc'), 64).toString('hex')).toBe(
      'ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923',
    );
    expect(blake2b(Buffer.alloc(0), 32).toString('hex')).toBe(
      '0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8',
    );
    for (const length of [0, 1, 127, 128, 129, 255, 256, 1000]) {
      const data = randomBytes(length);
      expect(blake2b(data, 64).equals(createHash('blake2b512').update(data).digest())).toBe(true);
    }
  });
});

describe('minisign formats', () => {
  const secret = generateSecretKey();
  const message = Buffer.from('{"name":"demo"}\n');

  it('a signature verifies with its key, and fails on a flipped byte, another key or an edited trusted comment', () => {
    const signature = signMessage(
      message,
      secret,
      formatComment({ timestamp: 1700000000, file: 'demo.json', repository: 'demo', revision: 4 }),
    );
    const ok = verifyMessage(message, signature, [secret]);
    expect(ok).toEqual({
      keyId: keyId(secret.keyNum),
      trustedComment: 'timestamp:1700000000\tfile:demo.json\thashed\trepository:demo\trevision:4',
    });
    expect(parseComment((ok as { trustedComment: string }).trustedComment)).toEqual({
      timestamp: 1700000000,
      file: 'demo.json',
      repository: 'demo',
      revision: 4,
    });
    const flipped = Buffer.from(message);
    flipped[3] = flipped[3]! ^ 1;
    expect(verifyMessage(flipped, signature, [secret])).toMatchObject({ failure: 'bad-signature' });
    expect(verifyMessage(message, signature, [generateSecretKey()])).toEqual({
      failure: 'unknown-key',
      keyId: keyId(secret.keyNum),
    });
    expect(verifyMessage(message, signature.replace('revision:4', 'revision:5'), [secret])).toMatchObject({
      failure: 'bad-signature',
    });
    expect(verifyMessage(message, 'not a signature', [secret])).toEqual({ failure: 'malformed' });
  });

  it('public and unencrypted secret keys round-trip; garbage is KEY_INVALID', async () => {
    const pub = parsePublicKey(formatPublicKey(secret), 'k.pub');
    expect(pub.keyNum.equals(secret.keyNum) && pub.key.equals(secret.key)).toBe(true);
    expect(formatPublicKey(secret)).toMatch(
      new RegExp(`^untrusted comment: minisign public key ${keyId(secret.keyNum)}\nRW`),
    );
    const read = await parseSecretKey(await formatSecretKey(secret), 'k.key', async () => {
      throw new Error('an unencrypted key needs no password');
    });
    expect(read.seed.equals(secret.seed)).toBe(true);
    expect(() => parsePublicKey('RWnonsense', 'x')).toThrow(expect.objectContaining({ code: 'KEY_INVALID' }));
    await expect(parseSecretKey('untrusted comment: x\nAAAA\n', 'x', async () => '')).rejects.toMatchObject({
      code: 'KEY_INVALID',
    });
  });
});

describe('trust rules', () => {
  const a = generateSecretKey();
  const b = generateSecretKey();
  it('match a URL exactly, a prefix ending in /, or a name; --trusted-key applies to all', () => {
    const policy = {
      ...NO_TRUST,
      rules: [
        { repo: 'https://t.example/repos/', key: a },
        { repo: 'ci', key: b },
      ],
    };
    expect(trustedKeys(policy, 'https://t.example/repos/demo.json', 'demo')).toEqual([a]);
    expect(trustedKeys(policy, 'https://t.example/reposX/demo.json', 'demo')).toEqual([]);
    expect(trustedKeys(policy, 'https://other.example/ci.json', 'ci')).toEqual([b]);
    expect(trustedKeys({ ...policy, keys: [b] }, '/srv/x.json', 'x')).toEqual([b]);
  });
});

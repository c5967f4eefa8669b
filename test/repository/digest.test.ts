// Every hash notation lago repositories use, and the form written to <entry>.hash.
import { describe, expect, it } from 'vitest';
import { formatDigest, parseDigest, parseHashFile } from '../../src/index.js';

const sha1 = '0123456789abcdef0123456789abcdef01234567';
const sha256 = 'f'.repeat(64);
const sha512 = 'e'.repeat(128);

describe('hash files', () => {
  it.each([
    ['bare SHA-1 hex, as lago wrote it', sha1, 'sha1', sha1],
    ['surrounding white space and a newline', `  ${sha1}\n\n`, 'sha1', sha1],
    ['upper-case hex', sha1.toUpperCase(), 'sha1', sha1],
    ['a sha1sum line', `${sha1}  centos7.qcow2\n`, 'sha1', sha1],
    ['a sha256sum binary-mode line', `${sha256} *img.raw`, 'sha256', sha256],
    ['algo:hex sha1', `sha1:${sha1}`, 'sha1', sha1],
    ['algo:hex sha256', `sha256:${sha256}`, 'sha256', sha256],
    ['algo:hex sha512', `sha512:${sha512}`, 'sha512', sha512],
    ['bare 64 hex is SHA-256', sha256, 'sha256', sha256],
    ['bare 128 hex is SHA-512', sha512, 'sha512', sha512],
    ['a BSD tag line', `SHA256 (img.raw) = ${sha256}`, 'sha256', sha256],
  ])('accepts %s', (_what, text, algorithm, hex) => {
    expect(parseHashFile(text, 'x.hash')).toEqual({ algorithm, hex });
  });

  it.each([
    ['empty', ''],
    ['HTML', '<html><body>Not Found</body></html>'],
    ['a wrong length', 'abc123'],
    ['an unknown algorithm', `md5:${'a'.repeat(32)}`],
    ['a length that does not fit the algorithm', `sha256:${sha1}`],
  ])('refuses %s with HASH_INVALID', (_what, text) => {
    expect(() => parseHashFile(text, 'http://h/x.hash')).toThrow(
      expect.objectContaining({ code: 'HASH_INVALID', fields: expect.objectContaining({ url: 'http://h/x.hash' }) }),
    );
  });

  it('writes SHA-1 as bare hex (lago) and other algorithms as algo:hex', () => {
    expect(formatDigest(parseDigest(sha1)!)).toBe(sha1);
    expect(formatDigest(parseDigest(`sha256:${sha256}`)!)).toBe(`sha256:${sha256}`);
  });
});

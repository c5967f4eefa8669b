// Every parser of untrusted input, fuzzed: it returns a value or a typed error, never anything else, and never hangs.
import fc from 'fast-check';
import { describe } from 'vitest';
import { encodeIndex, parseIndex } from '../../src/chunks/caibx.js';
import { compressChunk, decodeChunk } from '../../src/chunks/chunk-store.js';
import { chunkId } from '../../src/chunks/chunker.js';
import { parseChunkSizes } from '../../src/chunks/sizes.js';
import { detectImageFormat } from '../../src/fetch/detect.js';
import { parseMetadata } from '../../src/fetch/source.js';
import { parseLockFile } from '../../src/lockfile/file.js';
import { parseChallenge } from '../../src/oci/auth.js';
import { readTemplateManifest } from '../../src/oci/artifact.js';
import { checkManifest } from '../../src/oci/manifest.js';
import { parseOciReference } from '../../src/oci/reference.js';
import { parseDigest, parseHashFile } from '../../src/repository/digest.js';
import { parseRepository } from '../../src/repository/parse.js';
import { parseReference } from '../../src/repository/reference.js';
import { parseBasic, parseBearer, parseHtpasswd } from '../../src/server/auth.js';
import { parseComment } from '../../src/trust/comment.js';
import { generateSecretKey, parsePublicKey, signMessage, verifyMessage } from '../../src/trust/minisign.js';
import { parseDuration } from '../../src/util/duration.js';
import { parseSize } from '../../src/util/size.js';
import { fuzz } from './harness.js';

/** Text that is often close to the grammar: mutations of a valid sample, or anything. */
const near = (samples: string[]) =>
  fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc
      .tuple(fc.constantFrom(...samples), fc.nat(), fc.nat({ max: 8 }), fc.string({ maxLength: 12 }))
      .map(([sample, at, cut, insert]) => {
        const i = sample.length ? at % sample.length : 0;
        return sample.slice(0, i) + insert + sample.slice(i + cut);
      }),
  );

const bytes = (maxLength = 512) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));

/** Any JSON value, and objects shaped like lago's repository JSON with values of any type where strings belong. */
const anything = fc.jsonValue({ maxDepth: 4 });
const repositoryJson = fc.oneof(
  anything.map((v) => JSON.stringify(v)),
  fc
    .record({
      name: fc.oneof(fc.string(), anything),
      sources: fc.dictionary(
        fc.string({ maxLength: 8 }),
        fc.record({
          type: fc.constantFrom('http', 'file', 'oci', 'ftp', ''),
          args: fc.oneof(anything, fc.record({ baseurl: fc.string(), root: fc.string() })),
        }),
      ),
      templates: fc.dictionary(
        fc.string({ maxLength: 8 }),
        fc.record({
          versions: fc.dictionary(
            fc.string({ maxLength: 8 }),
            fc.record(
              {
                source: fc.string({ maxLength: 8 }),
                handle: fc.oneof(fc.string(), fc.constantFrom('../etc/passwd', '/abs', 'a/../../b')),
                timestamp: fc.oneof(fc.integer(), fc.double(), fc.string()),
                hash: fc.oneof(fc.string(), fc.constant('sha1:abc'), anything),
                compressed_hash: fc.oneof(fc.string(), anything),
                size: fc.oneof(fc.integer(), fc.double(), fc.string()),
                caibx_hash: fc.string(),
              },
              { requiredKeys: [] },
            ),
          ),
        }),
      ),
      mirrors: fc.oneof(anything, fc.array(fc.string())),
      revision: fc.oneof(fc.integer(), fc.string()),
    })
    .map((v) => JSON.stringify(v)),
  near([
    '{"name":"r","sources":{"s":{"type":"http","args":{"baseurl":"http://h/"}}},"templates":{"t":{"versions":{"1":{"source":"s","handle":"t/1","timestamp":1}}}}}',
  ]),
);

/** A valid index and its chunk sizes, to mutate. */
const sampleIndex = (() => {
  const sizes = { min: 8192, avg: 32768, max: 131072 };
  const chunks = [0, 1, 2].map((i) => ({ offset: i * 10_000, size: 10_000, id: chunkId(Buffer.alloc(10_000, i)) }));
  return encodeIndex({ sizes, chunks });
})();

const key = generateSecretKey();
const signed = signMessage(Buffer.from('message'), key, 'timestamp:1700000000 file:r.json');

describe('fuzz: repository and sidecars', () => {
  fuzz('repository-json', repositoryJson, (text) =>
    parseRepository(text, 'http://host/r.json', { env: {}, home: '/home/x', allowFileSources: false }),
  );
  fuzz(
    'hash-file',
    near(['sha1:0123456789abcdef0123456789abcdef01234567', '0123456789abcdef0123456789abcdef01234567  file']),
    (text) => parseHashFile(text, 'x.hash'),
  );
  fuzz('digest', near([`sha256:${'a'.repeat(64)}`, `sha1:${'b'.repeat(40)}`]), (text) => parseDigest(text));
  fuzz(
    'metadata',
    fc.oneof(
      bytes(),
      anything.map((v) => Buffer.from(JSON.stringify(v))),
    ),
    (data) => parseMetadata(data, 'x.metadata'),
  );
  fuzz('reference', near(['repo:template:version', 'repo:template', 'oci://host/name:tag']), (text) =>
    parseReference(text),
  );
  fuzz(
    'lock-file',
    fc.oneof(
      anything.map((v) => JSON.stringify(v)),
      near(['{"schema":1,"templates":{}}']),
    ),
    (text) => parseLockFile(text, 'templates.lock.json'),
  );
});

describe('fuzz: images and chunks', () => {
  const magic = fc.constantFrom(
    Buffer.from('QFI\xfb', 'latin1'),
    Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
    Buffer.from([0x28, 0xb5, 0x2f, 0xfd]),
    Buffer.from([0x1f, 0x8b]),
    Buffer.alloc(0),
  );
  fuzz(
    'image-head',
    fc.tuple(magic, bytes(600)).map(([m, rest]) => Buffer.concat([m, rest])),
    (head) => detectImageFormat(head, 'http://host/image'),
  );
  fuzz(
    'caibx',
    fc.oneof(
      bytes(1024),
      fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat({ max: 3 })).map(([at, value, many]) => {
        const copy = Buffer.from(sampleIndex);
        for (let k = 0; k <= many; k++) copy[(at + k * 17) % copy.length] = (value + k) & 0xff;
        return copy;
      }),
      fc.nat({ max: sampleIndex.length }).map((n) => sampleIndex.subarray(0, n)),
    ),
    (data) => parseIndex(data, 'x.caibx', 1024 * 1024),
  );
  fuzz(
    'chunk',
    fc.oneof(
      bytes(2048),
      fc.uint8Array({ maxLength: 4096 }).map((a) => compressChunk(Buffer.from(a))),
    ),
    (file) => decodeChunk(file, chunkId(Buffer.alloc(100)), 100, 'x.cacnk'),
  );
  fuzz('chunk-sizes', near(['8K:32K:128K', '16384:65536:262144']), (text) => parseChunkSizes(text));
});

describe('fuzz: OCI', () => {
  fuzz('oci-reference', near(['oci://registry:5000/name/sub:tag', `oci://h/n@sha256:${'a'.repeat(64)}`]), (text) =>
    parseOciReference(text),
  );
  fuzz(
    'oci-challenge',
    near(['Bearer realm="https://auth/token",service="registry",scope="repository:a:pull"', 'Basic realm="x"']),
    (text) => parseChallenge(text),
  );
  fuzz(
    'oci-manifest',
    fc.oneof(
      bytes(),
      anything.map((v) => Buffer.from(JSON.stringify(v))),
      fc
        .record({
          schemaVersion: fc.oneof(fc.constant(2), anything),
          mediaType: fc.oneof(fc.constant('application/vnd.oci.image.manifest.v1+json'), fc.string()),
          artifactType: fc.oneof(fc.string(), fc.constant('application/vnd.templates.image.v1')),
          config: fc.oneof(anything, fc.record({ mediaType: fc.string(), digest: fc.string(), size: fc.integer() })),
          layers: fc.oneof(
            anything,
            fc.array(
              fc.record({ mediaType: fc.string(), digest: fc.string(), size: fc.oneof(fc.integer(), fc.double()) }),
            ),
          ),
          annotations: fc.oneof(anything, fc.dictionary(fc.string(), fc.string())),
        })
        .map((v) => Buffer.from(JSON.stringify(v))),
    ),
    (data) =>
      readTemplateManifest(
        checkManifest(data, 'oci://h/n:t', undefined, 'application/vnd.oci.image.manifest.v1+json'),
        'oci://h/n:t',
      ),
  );
});

describe('fuzz: trust and auth', () => {
  fuzz(
    'minisign-public-key',
    near([
      `untrusted comment: minisign public key\n${Buffer.concat([Buffer.from('Ed'), Buffer.alloc(40, 7)]).toString('base64')}\n`,
    ]),
    (text) => parsePublicKey(text, 'key.pub'),
  );
  fuzz('minisign-signature', near([signed]), (text) =>
    verifyMessage(Buffer.from('message'), text, [{ keyNum: key.keyNum, key: key.key }]),
  );
  fuzz('trusted-comment', near(['timestamp:1700000000 file:r.json revision:3']), (text) => parseComment(text));
  fuzz('htpasswd', near([`ci:$2y$10$${'a'.repeat(53)}\n# comment\n`]), (text) => parseHtpasswd(text, 'htpasswd'));
  fuzz('authorization', near(['Basic Y2k6czNjcmV0', 'Bearer abc.def.ghi']), (text) => [
    parseBasic(text),
    parseBearer(text),
  ]);
  fuzz('size-and-duration', near(['16M', '1.5G', '30s', '2h', '7d']), (text) => [parseSize(text), parseDuration(text)]);
});

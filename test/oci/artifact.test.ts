// Our artifact's manifest and config (pure): what push writes reads back, with the raw digests the store knew.
import { describe, expect, it } from 'vitest';
import {
  configBlob,
  readTemplateConfig,
  readTemplateManifest,
  sha256Of,
  templateManifest,
  type TemplateConfig,
} from '../../src/oci/artifact.js';
import { OCI_EMPTY, OCI_MANIFEST } from '../../src/oci/media-types.js';
import type { Manifest } from '../../src/oci/registry.js';

const layer = { digest: `sha256:${'a'.repeat(64)}`, size: 1234, title: 'tiny-v1.raw.xz', compression: 'xz' as const };
const base: TemplateConfig = {
  schema: 1,
  ref: 'demo:tiny:v1',
  format: 'raw',
  size: 8 << 20,
  arch: 'x86_64',
  timestamp: 1700000000,
  digests: {},
  metadata: { distro: 'test' },
};
const manifestOf = (bytes: Buffer): Manifest => ({
  digest: sha256Of(bytes),
  mediaType: OCI_MANIFEST,
  bytes,
  json: JSON.parse(bytes.toString()) as Record<string, unknown>,
});

function roundTrip(config: TemplateConfig) {
  const bytes = configBlob(config);
  const manifest = manifestOf(templateManifest({ bytes }, layer, config));
  const artifact = readTemplateManifest(manifest, 'test');
  return { artifact, config: readTemplateConfig(bytes, artifact, 'test') };
}

describe('template artifact', () => {
  it('carries the raw digests the store knew: SHA-1 alone (lago verified it), SHA-256 alone, or both', () => {
    const sha1 = `sha1:${'1'.repeat(40)}`;
    const sha256 = `sha256:${'2'.repeat(64)}`;
    for (const digests of [{ sha1 }, { sha256 }, { sha256, sha1 }]) {
      const { artifact, config } = roundTrip({ ...base, digests });
      expect(config.digests).toEqual(digests);
      expect(artifact.layer).toMatchObject({ digest: layer.digest, size: layer.size });
      expect('org.templates.image.raw.digest' in artifact.annotations).toBe('sha256' in digests);
      expect(artifact.annotations['org.templates.image.raw.sha1']).toBe('sha1' in digests ? sha1 : undefined);
    }
  });

  it('refuses a config without a raw digest, or with one that is not a string (METADATA_INVALID)', () => {
    const bad = [
      { ...base, digests: {} },
      { ...base, digests: { sha256: 7 } },
      { ...base, digests: { sha1: `sha1:${'1'.repeat(40)}`, sha256: null } },
    ];
    for (const config of bad) {
      const bytes = Buffer.from(JSON.stringify(config));
      const artifact = readTemplateManifest(
        manifestOf(templateManifest({ bytes }, layer, { ...base, digests: { sha1: 'sha1:x' } })),
        'test',
      );
      expect(() => readTemplateConfig(bytes, artifact, 'test')).toThrow(
        expect.objectContaining({ code: 'METADATA_INVALID' }),
      );
    }
  });

  it('reads the empty config from the annotations', () => {
    const bytes = configBlob({ ...base, digests: { sha256: `sha256:${'3'.repeat(64)}` } });
    const json = JSON.parse(
      templateManifest({ bytes }, layer, { ...base, digests: { sha256: `sha256:${'3'.repeat(64)}` } }).toString(),
    ) as { config: Record<string, unknown> };
    json.config = { mediaType: OCI_EMPTY, digest: sha256Of('{}'), size: 2 };
    const artifact = readTemplateManifest(manifestOf(Buffer.from(JSON.stringify(json))), 'test');
    expect(readTemplateConfig(Buffer.from('{}'), artifact, 'test')).toMatchObject({
      size: base.size,
      timestamp: base.timestamp,
      digests: { sha256: `sha256:${'3'.repeat(64)}` },
    });
  });

  it('reads an xz or a zst layer, and refuses any other or a second one (FORMAT_UNSUPPORTED)', () => {
    const config = { ...base, digests: { sha256: `sha256:${'3'.repeat(64)}` } };
    const bytes = configBlob(config);
    const zst = readTemplateManifest(
      manifestOf(templateManifest({ bytes }, { ...layer, title: 'tiny-v1.raw.zst', compression: 'zst' }, config)),
      'test',
    );
    expect(zst.compression).toBe('zst');
    expect(zst.layer.mediaType).toBe('application/vnd.templates.image.raw.zst');
    expect(roundTrip(config).artifact.compression).toBe('xz');
    const json = JSON.parse(templateManifest({ bytes }, layer, config).toString()) as {
      layers: Array<Record<string, unknown>>;
    };
    for (const layers of [[{ ...json.layers[0], mediaType: 'application/gzip' }], [json.layers[0], json.layers[0]]]) {
      expect(() => readTemplateManifest(manifestOf(Buffer.from(JSON.stringify({ ...json, layers }))), 'test')).toThrow(
        expect.objectContaining({ code: 'FORMAT_UNSUPPORTED' }),
      );
    }
  });
});

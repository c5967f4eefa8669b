// The catalogue formats (pure): simplestreams serials and products, Vagrant's version numbers and catalogue order.
import { describe, expect, it } from 'vitest';
import { imagesJson, serialOf, simplestreamsProblem } from '../../src/catalogues/simplestreams.js';
import { vagrantCatalogue, vagrantProblem, vagrantVersion, vagrantVersions } from '../../src/catalogues/vagrant.js';

const at = (iso: string) => Date.parse(iso) / 1000;

describe('simplestreams', () => {
  it('gives each version a serial LXD reads as its date, ordered by time', () => {
    expect(serialOf(at('2026-03-04T05:06:07Z'), 'v4')).toBe('20260304_050607_v4');
    const older = serialOf(at('2025-12-31T23:59:59Z'), 'zz');
    const newer = serialOf(at('2026-01-01T00:00:00Z'), 'aa');
    expect(newer > older).toBe(true);
  });

  it('makes one product per version with both aliases, and leaves out names LXD cannot alias', () => {
    const image = {
      key: { repository: 'phx', template: 'el9', version: 'v2' },
      timestamp: at('2026-01-02T03:04:05Z'),
      arch: 'amd64',
      description: 'x',
      metadata: { path: 'm', size: 1, sha256: 'a' },
      disk: { path: 'd', size: 2, sha256: 'b' },
      fingerprint: 'f',
    };
    const json = imagesJson([image], 0);
    expect(json.products['phx:el9:v2']).toMatchObject({ aliases: 'phx/el9/v2,phx/el9', os: 'phx', release: 'el9' });
    expect(Object.keys(json.products['phx:el9:v2']!.versions)).toEqual(['20260102_030405_v2']);
    expect(simplestreamsProblem(image.key)).toBeUndefined();
    expect(simplestreamsProblem({ repository: 'a b', template: 't', version: 'v' })).toMatch(/LXD alias/);
  });
});

describe('vagrant', () => {
  it('numbers versions by time, stable as others come, same-second ones by name', () => {
    expect(vagrantVersion(at('2026-03-04T05:06:07Z'))).toBe('20260304.50607.0');
    const first = vagrantVersions([{ version: 'v1', timestamp: at('2026-01-01T00:00:00Z') }]);
    const later = vagrantVersions([
      { version: 'v1', timestamp: at('2026-01-01T00:00:00Z') },
      { version: 'v2', timestamp: at('2026-02-01T00:00:00Z') },
      { version: 'b', timestamp: at('2026-02-01T00:00:00Z') },
    ]);
    expect(later.get('v1')).toBe(first.get('v1'));
    expect(later.get('b')).toBe('20260201.0.0');
    expect(later.get('v2')).toBe('20260201.0.1');
  });

  it('lists a catalogue in increasing version order, one libvirt provider with its sha256 each', () => {
    const catalogue = vagrantCatalogue({ repository: 'phx', template: 'el9' }, [
      { number: '20260201.0.0', name: 'v10', url: 'u2', sha256: 'b' },
      { number: '20260101.235959.0', name: 'v9', url: 'u1', sha256: 'a' },
    ]);
    expect(catalogue.name).toBe('phx/el9');
    expect(catalogue.versions.map((v) => v.version)).toEqual(['20260101.235959.0', '20260201.0.0']);
    expect(catalogue.versions[0]!.providers).toEqual([
      { name: 'libvirt', url: 'u1', checksum_type: 'sha256', checksum: 'a' },
    ]);
    expect(vagrantProblem({ repository: 'phx', template: 'a:b', version: 'v' })).toMatch(/Vagrant box name/);
  });
});

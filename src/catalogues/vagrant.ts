// Vagrant (pure): a box catalogue per template, versions as Vagrant numbers, and a libvirt box's metadata.json and Vagrantfile.
import type { VersionKey } from '../repository/reference.js';

/** A box name's part as Vagrant takes it (`ORG/BOX`): letters, digits, `.`, `_` and `-`. */
const NAME_PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Why a version's template cannot be a Vagrant box, or undefined when it can. */
export function vagrantProblem(key: VersionKey): string | undefined {
  for (const part of [key.repository, key.template])
    if (!NAME_PART.test(part)) return `${JSON.stringify(part)} cannot be part of a Vagrant box name`;
  return undefined;
}

/**
 * Vagrant's version of a template version: its timestamp as `YYYYMMDD.HHMMSS.N` (UTC), N the version's place among the
 * template's versions of that same second (by name, from 0). Stable (a version keeps its number as others come) and
 * monotonic in time, which is the order `box outdated` and `box update` follow; Vagrant refuses names like "v4".
 */
export function vagrantVersion(timestamp: number, sameSecond = 0): string {
  const iso = new Date(Math.floor(timestamp) * 1000).toISOString();
  return `${Number(iso.slice(0, 10).replaceAll('-', ''))}.${Number(iso.slice(11, 19).replaceAll(':', ''))}.${sameSecond}`;
}

/** Vagrant numbers for a template's versions, by version name. */
export function vagrantVersions(versions: Array<{ version: string; timestamp: number }>): Map<string, string> {
  const out = new Map<string, string>();
  const bySecond = new Map<number, string[]>();
  for (const v of versions) {
    const second = Math.floor(v.timestamp);
    bySecond.set(second, [...(bySecond.get(second) ?? []), v.version]);
  }
  for (const [second, names] of bySecond)
    for (const [place, name] of [...names].sort().entries()) out.set(name, vagrantVersion(second, place));
  return out;
}

export interface VagrantBoxVersion {
  /** Vagrant's number (vagrantVersions). */
  number: string;
  /** The template's own version name. */
  name: string;
  url: string;
  sha256: string;
}

/** The catalogue `vagrant box add REPO/TEMPLATE` reads: versions in increasing order, one libvirt provider each. */
export function vagrantCatalogue(key: { repository: string; template: string }, versions: VagrantBoxVersion[]) {
  const order = (v: string) => v.split('.').map(Number);
  const sorted = [...versions].sort((a, b) => {
    const [x, y] = [order(a.number), order(b.number)];
    return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
  });
  return {
    name: `${key.repository}/${key.template}`,
    description: `${key.repository}:${key.template} from the templates cache host`,
    versions: sorted.map((v) => ({
      version: v.number,
      description: `${key.repository}:${key.template}:${v.name}`,
      providers: [{ name: 'libvirt', url: v.url, checksum_type: 'sha256', checksum: v.sha256 }],
    })),
  };
}

/** A libvirt box's metadata.json: the qcow2 and its virtual size in whole GiB (rounded up). */
export function boxMetadata(virtualBytes: number): string {
  return `${JSON.stringify({ provider: 'libvirt', format: 'qcow2', virtual_size: Math.max(1, Math.ceil(virtualBytes / 2 ** 30)) })}\n`;
}

/** The box's Vagrantfile: libvirt with KVM; the rest is the user's own Vagrantfile. */
export const BOX_VAGRANTFILE = `Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.driver = "kvm"
  end
end
`;

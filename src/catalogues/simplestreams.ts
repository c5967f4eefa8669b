// simplestreams (pure): the served templates as LXD/Incus virtual-machine products, index.json and images.json.
import type { VersionKey } from '../repository/reference.js';

/** One stored version with its LXD rendition, as the catalogue lists it. */
export interface SimplestreamsImage {
  key: VersionKey;
  /** Seconds since the epoch (the version's timestamp): its serial and the order of versions. */
  timestamp: number;
  /** simplestreams' (Debian's) architecture name: amd64, arm64, … */
  arch: string;
  description: string;
  /** Paths relative to the server's root. */
  metadata: { path: string; size: number; sha256: string };
  disk: { path: string; size: number; sha256: string };
  /** LXD's fingerprint: SHA-256 of the metadata tarball then the disk. */
  fingerprint: string;
}

export const INDEX_PATH = 'streams/v1/index.json';
export const IMAGES_PATH = 'streams/v1/images.json';

/** A name part LXD takes in an alias (`lxc image info remote:REPO/TEMPLATE/VERSION`): no ':', ',', '/' or space. */
const ALIAS_PART = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;

/** Why a version cannot be listed, or undefined when it can. */
export function simplestreamsProblem(key: VersionKey): string | undefined {
  for (const part of [key.repository, key.template, key.version])
    if (!ALIAS_PART.test(part)) return `${JSON.stringify(part)} cannot be part of an LXD alias`;
  return undefined;
}

/**
 * The version's serial: its timestamp as LXD reads one (`YYYYMMDD_HHMMSS`, UTC; LXD takes the creation date from the
 * first eight characters and orders a product's images by serial, newest first), then the version's own name.
 */
export function serialOf(timestamp: number, version: string): string {
  const iso = new Date(Math.floor(timestamp) * 1000).toISOString();
  return `${iso.slice(0, 10).replaceAll('-', '')}_${iso.slice(11, 19).replaceAll(':', '')}_${version}`;
}

/** The product of one version: LXD gives a product's aliases to its newest image only, so each version is one. */
function productId(key: VersionKey): string {
  return `${key.repository}:${key.template}:${key.version}`;
}

/** LXD's architecture name (metadata.yaml) for a simplestreams one. */
export function lxdArchitecture(arch: string): string {
  return ({ amd64: 'x86_64', arm64: 'aarch64', i386: 'i686', armhf: 'armv7l' } as Record<string, string>)[arch] ?? arch;
}

/** A template's metadata architecture (x86_64, aarch64, amd64, …) as simplestreams names it; amd64 when unsaid. */
export function simplestreamsArch(arch: unknown): string {
  if (typeof arch !== 'string' || !arch) return 'amd64';
  return ({ x86_64: 'amd64', aarch64: 'arm64', i686: 'i386', armv7l: 'armhf' } as Record<string, string>)[arch] ?? arch;
}

function product(image: SimplestreamsImage) {
  const { repository, template, version } = image.key;
  return {
    aliases: `${repository}/${template}/${version},${repository}/${template}`,
    arch: image.arch,
    os: repository,
    release: template,
    release_title: template,
    version,
    versions: {
      [serialOf(image.timestamp, version)]: {
        // virt-builder's simplestreams reader names a template by its pubname and takes the `disk1.img` item.
        pubname: `${repository}:${template}:${version}`,
        items: {
          'lxd.tar.xz': {
            ftype: 'lxd.tar.xz',
            path: image.metadata.path,
            size: image.metadata.size,
            sha256: image.metadata.sha256,
            'combined_disk-kvm-img_sha256': image.fingerprint,
          },
          'disk-kvm.img': {
            ftype: 'disk-kvm.img',
            path: image.disk.path,
            size: image.disk.size,
            sha256: image.disk.sha256,
          },
          // The same qcow2 for virt-builder, under the item name it looks for; an ftype LXD does not know, so that LXD
          // does not list the image twice.
          'disk1.img': {
            ftype: 'qcow2',
            path: image.disk.path,
            size: image.disk.size,
            sha256: image.disk.sha256,
          },
        },
      },
    },
  };
}

const updated = (now: number) => new Date(now).toUTCString();

/** images.json: one product per version, in name order. */
export function imagesJson(images: SimplestreamsImage[], now: number) {
  const sorted = [...images].sort((a, b) => (productId(a.key) < productId(b.key) ? -1 : 1));
  return {
    content_id: 'images',
    datatype: 'image-downloads',
    format: 'products:1.0',
    updated: updated(now),
    products: Object.fromEntries(sorted.map((image) => [productId(image.key), product(image)])),
  };
}

/** index.json: the one products file and its product ids. */
export function indexJson(images: SimplestreamsImage[], now: number) {
  return {
    format: 'index:1.0',
    updated: updated(now),
    index: {
      images: {
        datatype: 'image-downloads',
        path: IMAGES_PATH,
        format: 'products:1.0',
        updated: updated(now),
        products: images.map((image) => productId(image.key)).sort(),
      },
    },
  };
}

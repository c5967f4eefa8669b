// The OCI media types and annotations templates reads and writes, named once here (docs/oci.md).

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** The empty config of artifacts (`{}`); accepted when reading, its blob pushed when written. */
export const OCI_EMPTY = 'application/vnd.oci.empty.v1+json';

/** Our artifact: a template image. */
export const TEMPLATE_ARTIFACT = 'application/vnd.templates.image.v1';
/** Our config blob: the template's metadata and the raw image's digests. */
export const TEMPLATE_CONFIG = 'application/vnd.templates.image.config.v1+json';
/** Our one layer: the multi-block `.xz` of the raw image. */
export const TEMPLATE_LAYER_XZ = 'application/vnd.templates.image.raw.xz';
/** Or (push --layer zst): the `.zst` of the raw image, four times faster to unpack. */
export const TEMPLATE_LAYER_ZST = 'application/vnd.templates.image.raw.zst';

/** What a manifest GET accepts: registries answer only to explicit types. */
export const MANIFEST_ACCEPT = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST].join(', ');

export const ANNOTATION = {
  title: 'org.opencontainers.image.title',
  created: 'org.opencontainers.image.created',
  version: 'org.opencontainers.image.version',
  rawSize: 'org.templates.image.raw.size',
  rawDigest: 'org.templates.image.raw.digest',
  rawSha1: 'org.templates.image.raw.sha1',
} as const;

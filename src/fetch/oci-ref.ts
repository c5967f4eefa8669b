// `oci://` references as fetch takes them: the store key derived from one, and the version an `oci` source stands for.
import { parseDigest } from '../repository/digest.js';
import type { Repository, VersionSpec } from '../repository/model.js';
import type { Resolved } from '../repository/resolve.js';
import { parseOciReference, registryUrl, storeKeyOf } from '../oci/reference.js';
import type { ResolvedArtifact } from '../providers/oci.js';

/**
 * `oci://HOST/NAME:TAG` (or `@sha256:…`) as a resolved version of a one-source repository: stored as
 * `HOST_PORT:NAME_WITH_+:TAG` (docs/oci.md). Plain HTTP only for a loopback host, or with `insecure`.
 */
export function resolveOciReference(text: string, insecure = false): Resolved {
  const ref = parseOciReference(text);
  const key = storeKeyOf(ref);
  const source = { name: 'oci', type: 'oci' as const, registry: registryUrl(ref.host, insecure), repository: ref.name };
  const version: VersionSpec = { name: key.version, source, handle: ref.digest ?? ref.tag!, timestamp: 0 };
  const repository: Repository = {
    name: key.repository,
    location: text,
    problems: [],
    templates: new Map([
      [
        key.template,
        { ok: true, value: { name: key.template, versions: new Map([[key.version, { ok: true, value: version }]]) } },
      ],
    ]),
  };
  return { ref: `${key.repository}:${key.template}:${key.version}`, key, repository, version };
}

/** The version with the artifact's digests where the repository JSON gives none: the layer's is the `.xz` (or `.zst`) digest. */
export function withArtifactDigests(version: VersionSpec, resolved: ResolvedArtifact): VersionSpec {
  const layer = parseDigest(resolved.artifact.layer.digest);
  const zst = resolved.artifact.compression === 'zst';
  const raw = parseDigest(resolved.config.digests.sha256 ?? resolved.config.digests.sha1 ?? '');
  return {
    ...version,
    ...(zst || version.compressedHash || !layer ? {} : { compressedHash: layer }),
    ...(!zst || version.zst || !layer ? {} : { zst: { digest: layer, size: resolved.artifact.layer.size } }),
    ...(version.hash || !raw ? {} : { hash: raw }),
    ...(version.size !== undefined || !resolved.config.size ? {} : { size: resolved.config.size }),
    ...(version.format ? {} : { format: resolved.config.format }),
  };
}

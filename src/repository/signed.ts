// A loaded repository checked against the keys trusted for it: its own .minisig, or, for a cache host's JSON, the signed upstream it passes on.
import type { Context } from '../context.js';
import { TemplatesError, redactUrl } from '../errors.js';
import { checkRepositorySignature, type TrustState } from '../trust/check.js';
import { trustedKeys } from '../trust/policy.js';
import type { Entry, Repository, TemplateSpec, VersionSpec } from './model.js';
import { extend } from './lazy-map.js';

/** The upstream JSON a cache host passes on, with its `.minisig`, as read (or cached). */
export interface UpstreamCopy {
  url: string;
  text: string;
  signature?: string;
}

export interface SignedInput {
  repository: Repository;
  /** The JSON exactly as served. */
  text: string;
  location: string;
  shown: string;
  signatureAt: string;
  signature: () => Promise<string | undefined>;
  /** Reads the upstream copy a cache host's JSON names (`upstream`, relative to where the JSON came from). */
  upstream?: (relative: string) => Promise<UpstreamCopy>;
  /** Parses the upstream copy: only its names and digests are used (nothing is fetched from its sources). */
  parse: (text: string, shown: string) => Repository;
}

export interface SignedOptions {
  ctx: Context;
  state?: TrustState;
  onWarning?: (message: string) => void;
}

/**
 * The served repository with the signed upstream's digests in force: a version the signature covers is fetched against
 * the publisher's digests (the cache host only supplies bytes); a version the signed upstream lacks is dropped.
 */
function overlaySigned(served: Repository, signed: Repository, onWarning?: (message: string) => void): Repository {
  const templates = new Map<string, Entry<TemplateSpec>>();
  for (const [name, template] of served.templates) {
    if (!template.ok) continue;
    const upstream = signed.templates.get(name);
    const versions = new Map<string, Entry<VersionSpec>>();
    for (const [version, spec] of template.value.versions) {
      const theirs = upstream?.ok ? upstream.value.versions.get(version) : undefined;
      if (!spec.ok || !theirs?.ok) {
        onWarning?.(`${served.location}: ${name}:${version} is not in the signed upstream; it is left out`);
        continue;
      }
      const digests = theirs.value.hash || theirs.value.compressedHash;
      // Every digest from the signed copy; a .zst the signed copy does not list is not used (its digest would be only the server's word).
      const { hash: _h, compressedHash: _c, zst: _z, ...rest } = spec.value;
      const pick = {
        ...(theirs.value.hash ? { hash: theirs.value.hash } : {}),
        ...(theirs.value.compressedHash ? { compressedHash: theirs.value.compressedHash } : {}),
        ...(theirs.value.zst ? { zst: theirs.value.zst } : {}),
      };
      versions.set(version, { ok: true, value: digests ? { ...rest, ...pick } : spec.value });
    }
    templates.set(name, { ok: true, value: { ...template.value, versions } });
  }
  return { ...served, templates };
}

/**
 * The repository with its signature state (and `text`), and the upstream copy that was checked for a cache host's JSON;
 * throws a REPO_* error when it must not be used.
 */
export async function withSignature(
  input: SignedInput,
  options: SignedOptions,
): Promise<{ repository: Repository; upstreamCopy?: UpstreamCopy }> {
  const { repository, text, location, shown } = input;
  const common = {
    location,
    shown,
    policy: options.ctx.trust,
    now: options.ctx.now(),
    ...(options.state ? { state: options.state } : {}),
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
  };
  if (repository.upstream && input.upstream && trustedKeys(options.ctx.trust, location, repository.name).length) {
    const copy = await input.upstream(repository.upstream);
    const signed = input.parse(copy.text, redactUrl(copy.url));
    if (signed.name !== repository.name) {
      throw new TemplatesError(
        'REPO_SIGNATURE_INVALID',
        `${shown}: its upstream copy is repository ${signed.name}, not ${repository.name}`,
        {
          repository: repository.name,
          url: shown,
          expected: repository.name,
          actual: signed.name,
          hint: 'the cache host passes on another repository',
        },
      );
    }
    const info = await checkRepositorySignature({
      ...common,
      text: copy.text,
      name: signed.name,
      ...(signed.revision !== undefined ? { revision: signed.revision } : {}),
      signatureAt: `${redactUrl(copy.url)}.minisig`,
      signature: async () => copy.signature,
    });
    return {
      repository: {
        ...overlaySigned(repository, signed, options.onWarning),
        signature: { ...info, upstream: redactUrl(copy.url) },
        text,
      },
      upstreamCopy: copy,
    };
  }
  const info = await checkRepositorySignature({
    ...common,
    text,
    name: repository.name,
    ...(repository.revision !== undefined ? { revision: repository.revision } : {}),
    signatureAt: redactUrl(input.signatureAt),
    signature: input.signature,
  });
  return { repository: extend(repository, { signature: info, text }) };
}

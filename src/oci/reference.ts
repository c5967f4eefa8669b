// OCI references (pure): `oci://HOST[:PORT]/NAME[:TAG|@sha256:HEX]`, the registry URL, and the store key derived from one.
import { TemplatesError } from '../errors.js';

export interface OciReference {
  /** `host[:port]`. */
  host: string;
  /** The repository below the registry, `a/b/c`. */
  name: string;
  tag?: string;
  digest?: string;
}

const NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

export const isOciUrl = (text: string) => /^oci:\/\//i.test(text);

function bad(text: string, why: string): TemplatesError {
  return new TemplatesError('BAD_REFERENCE', `${JSON.stringify(text)}: ${why}`, {
    hint: 'write oci://HOST[:PORT]/NAME[:TAG] or oci://HOST/NAME@sha256:HEX',
  });
}

/** Parses an `oci://` reference; no tag and no digest means the tag `latest`. */
export function parseOciReference(text: string): OciReference {
  if (!isOciUrl(text)) throw bad(text, 'not an oci:// reference');
  const rest = text.slice('oci://'.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) throw bad(text, 'no repository name after the host');
  const host = rest.slice(0, slash);
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(host) && !/^\[[0-9a-fA-F:]+\](:\d{1,5})?$/.test(host))
    throw bad(text, `bad host ${JSON.stringify(host)}`);
  let path = rest.slice(slash + 1);
  let digest: string | undefined;
  let tag: string | undefined;
  const at = path.indexOf('@');
  if (at >= 0) {
    digest = path.slice(at + 1);
    path = path.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(text, 'a digest is sha256: and 64 lowercase hex digits');
  }
  const colon = path.lastIndexOf(':');
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) throw bad(text, `bad tag ${JSON.stringify(tag)}`);
  }
  if (!NAME.test(path))
    throw bad(text, `bad repository name ${JSON.stringify(path)} (lowercase letters, digits, . _ - and /)`);
  return {
    host,
    name: path,
    ...(tag ? { tag } : {}),
    ...(digest ? { digest } : {}),
    ...(!tag && !digest ? { tag: 'latest' } : {}),
  };
}

export function formatOciReference(ref: OciReference): string {
  return `oci://${ref.host}/${ref.name}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(:\d+)?$/i;

/** `https://HOST`, or `http://HOST` for a loopback registry or with `insecure`. */
export function registryUrl(host: string, insecure = false): string {
  return `${insecure || LOOPBACK.test(host) ? 'http' : 'https'}://${host}`;
}

/**
 * The store key of a pulled reference: repository = the host (`:` → `_`), template = the name (`/` → `+`), version =
 * the tag, or `sha256-<hex>` for a digest. `oci://reg.example:5000/ci/alpine:3.19` → `reg.example_5000:ci+alpine:3.19`.
 */
export function storeKeyOf(ref: OciReference): { repository: string; template: string; version: string } {
  return {
    repository: ref.host.replace(/[[\]]/g, '').replace(/:/g, '_'),
    template: ref.name.replace(/\//g, '+'),
    version: ref.digest ? ref.digest.replace(':', '-') : ref.tag!,
  };
}

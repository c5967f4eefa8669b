// Checks a repository JSON against the keys trusted for it: its .minisig, the names and revision signed, its age, rollback.
import { TemplatesError } from '../errors.js';
import { parseComment } from './comment.js';
import { verifyMessage, type PublicKey } from './minisign.js';
import { trustedKeys, type TrustPolicy } from './policy.js';

/** What a loaded repository's signature is: verified by a trusted key, or not checked because no key applies. */
export interface SignatureInfo {
  state: 'verified' | 'unsigned';
  /** The signer's key ID (hex, as minisign prints it). */
  keyId?: string;
  /** ISO 8601 time of signing (the trusted comment's timestamp). */
  signedAt?: string;
  revision?: number;
  /** Set for a cache host's JSON: the signed upstream copy it passed on, which was what was checked. */
  upstream?: string;
}

/** What this store accepted last for a repository name: the highest revision and signing time (seconds). */
export interface AcceptedRevision {
  revision?: number;
  signedAt?: number;
}

export interface TrustState {
  read(name: string): Promise<AcceptedRevision | undefined>;
  accept(name: string, accepted: AcceptedRevision): Promise<void>;
}

export interface CheckInput {
  /** The JSON exactly as served (its UTF-8 bytes are what was signed). */
  text: string;
  name: string;
  revision?: number;
  /** Where the repository was loaded from (URL or path) and where its signature is (for messages). */
  location: string;
  shown: string;
  signatureAt: string;
  /** The `.minisig` text from the same server (or beside the file); undefined when there is none. */
  signature: () => Promise<string | undefined>;
  policy: TrustPolicy;
  state?: TrustState;
  now: number;
  onWarning?: (message: string) => void;
}

const fail = (
  code: 'REPO_UNSIGNED' | 'REPO_SIGNATURE_INVALID' | 'REPO_ROLLBACK' | 'REPO_SIGNATURE_EXPIRED',
  message: string,
  input: CheckInput,
  hint: string,
  extra: { expected?: string; actual?: string } = {},
) => new TemplatesError(code, message, { repository: input.name, url: input.shown, hint, ...extra });

/** Verifies the repository when a key is trusted for it; throws a REPO_* error when it must not be used. */
export async function checkRepositorySignature(input: CheckInput): Promise<SignatureInfo> {
  const { policy, name, shown } = input;
  const keys = trustedKeys(policy, input.location, name);
  if (keys.length === 0) {
    if (policy.requireSignatures)
      throw fail(
        'REPO_UNSIGNED',
        `${shown}: no trusted key is configured for repository ${name}, and requireSignatures is on`,
        input,
        'add {"repo", "publicKey"} to the config\'s trust, or pass --trusted-key (docs/trust.md)',
      );
    return { state: 'unsigned' };
  }
  const minisig = await input.signature();
  if (minisig === undefined)
    throw fail(
      'REPO_UNSIGNED',
      `${shown}: repository ${name} has no signature (${input.signatureAt}), and a key is trusted for it`,
      input,
      'ask the publisher to sign it (templates sign), or remove the trust rule',
    );
  const result = verifyMessage(Buffer.from(input.text, 'utf8'), minisig, keys);
  if ('failure' in result) {
    const why =
      result.failure === 'malformed'
        ? `${input.signatureAt} is not a minisign signature`
        : result.failure === 'unknown-key'
          ? `signed by key ${result.keyId}, which is not trusted for repository ${name}`
          : `the signature by key ${result.keyId} does not match: the JSON or its signature was altered`;
    throw fail(
      'REPO_SIGNATURE_INVALID',
      `${shown}: ${why}`,
      input,
      'do not use this copy; fetch from the publisher again or ask them',
      result.keyId ? { actual: result.keyId } : {},
    );
  }
  const comment = parseComment(result.trustedComment);
  if (comment.repository !== undefined && comment.repository !== name) {
    throw fail(
      'REPO_SIGNATURE_INVALID',
      `${shown}: the signature is for repository ${comment.repository}, not ${name}`,
      input,
      'the JSON was swapped for another signed repository',
      { expected: name, actual: comment.repository },
    );
  }
  if (comment.revision !== undefined && comment.revision !== input.revision) {
    throw fail(
      'REPO_SIGNATURE_INVALID',
      `${shown}: the signature names revision ${comment.revision}, the JSON ${input.revision ?? 'none'}`,
      input,
      'the JSON or its signature was altered',
    );
  }
  const signedAt = comment.timestamp;
  if (policy.maxSignatureAgeMs !== undefined) {
    const age = signedAt === undefined ? undefined : input.now - signedAt * 1000;
    if (age === undefined || age > policy.maxSignatureAgeMs) {
      const when =
        signedAt === undefined ? 'carries no signing time' : `was signed ${new Date(signedAt * 1000).toISOString()}`;
      throw fail(
        'REPO_SIGNATURE_EXPIRED',
        `${shown}: the signature ${when}, older than maxSignatureAge (${Math.round(policy.maxSignatureAgeMs / 1000)} s)`,
        input,
        'the publisher must sign it again (a frozen copy is being served?)',
      );
    }
  }
  const revision = input.revision ?? comment.revision;
  const accepted = await input.state?.read(name);
  if (accepted && !policy.allowRollback) {
    const older =
      revision !== undefined && accepted.revision !== undefined
        ? revision < accepted.revision
        : signedAt !== undefined && accepted.signedAt !== undefined && signedAt < accepted.signedAt;
    if (older) {
      const had =
        accepted.revision !== undefined && revision !== undefined
          ? `revision ${accepted.revision}`
          : `a signature of ${new Date(accepted.signedAt! * 1000).toISOString()}`;
      const got =
        accepted.revision !== undefined && revision !== undefined
          ? `revision ${revision}`
          : `one of ${new Date(signedAt! * 1000).toISOString()}`;
      throw fail(
        'REPO_ROLLBACK',
        `${shown}: repository ${name} is at ${got}, older than the ${had} this store accepted`,
        input,
        'an old signed copy is being replayed; if the publisher really went back, pass --allow-rollback',
        { expected: had, actual: got },
      );
    }
  }
  // The highest seen stays; --allow-rollback makes this copy the new mark (the publisher really went back).
  const keep = (now: number | undefined, before: number | undefined) =>
    now === undefined ? before : policy.allowRollback || before === undefined ? now : Math.max(now, before);
  const nextRevision = keep(revision, accepted?.revision);
  const nextSignedAt = keep(signedAt, accepted?.signedAt);
  // Best effort: a read-only store still uses a verified repository, it just cannot remember it. Unchanged: no write.
  if (nextRevision !== accepted?.revision || nextSignedAt !== accepted?.signedAt)
    await input.state
      ?.accept(name, {
        ...(nextRevision !== undefined ? { revision: nextRevision } : {}),
        ...(nextSignedAt !== undefined ? { signedAt: nextSignedAt } : {}),
      })
      .catch((error: unknown) =>
        input.onWarning?.(`cannot remember the accepted revision of ${name}: ${(error as Error).message}`),
      );
  return {
    state: 'verified',
    keyId: result.keyId,
    ...(signedAt !== undefined ? { signedAt: new Date(signedAt * 1000).toISOString() } : {}),
    ...(revision !== undefined ? { revision } : {}),
  };
}

/** One copy's signature as status reports it: verified, invalid (any failure), missing, or unchecked (no key is trusted). */
export interface CopySignature {
  state: 'verified' | 'invalid' | 'missing' | 'unchecked';
  keyId?: string;
  signedAt?: string;
}

/** The signature state of the JSON `text` given its `.minisig` (undefined: none) and the keys trusted for the repository. */
export function copySignature(text: string, signature: string | undefined, keys: PublicKey[]): CopySignature {
  if (keys.length === 0) return { state: 'unchecked' };
  if (signature === undefined) return { state: 'missing' };
  const result = verifyMessage(Buffer.from(text, 'utf8'), signature, keys);
  if ('failure' in result) return { state: 'invalid', ...(result.keyId ? { keyId: result.keyId } : {}) };
  const { timestamp } = parseComment(result.trustedComment);
  return {
    state: 'verified',
    keyId: result.keyId,
    ...(timestamp !== undefined ? { signedAt: new Date(timestamp * 1000).toISOString() } : {}),
  };
}

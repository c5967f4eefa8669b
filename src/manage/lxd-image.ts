// LXD's rendition of a stored entry (simplestreams, docs/catalogues.md): its qcow2, a metadata tarball, and their fingerprint.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Context } from '../context.js';
import { TemplatesError, abortError, storeIoError } from '../errors.js';
import { lxdMetadataPath, lxdRecordPath, tempPrefix, type VersionKey } from '../store/layout.js';
import { withEntryLock } from '../store/lock.js';
import { fsyncDir } from '../store/commit.js';
import { notStored, type Store } from '../store/store.js';
import { fsyncPath, writeFileAtomic } from '../util/atomic-write.js';
import { type Qcow2Rendition, ensureQcow2, readQcow2 } from './qcow2.js';

/** What LXD's metadata.yaml says of the image (its `properties`), and when it was made. */
export interface LxdProperties {
  /** Seconds since the epoch: the version's timestamp. */
  created: number;
  /** LXD's architecture name (x86_64, aarch64, …). */
  architecture: string;
  os: string;
  release: string;
  serial: string;
  description: string;
}

export interface LxdImage {
  qcow2: Qcow2Rendition;
  metadata: { path: string; size: number; sha256: string };
  /** LXD's fingerprint of the image: SHA-256 of the metadata tarball's bytes followed by the qcow2's. */
  fingerprint: string;
}

interface LxdRecord {
  sha256: string;
  size: number;
  fingerprint: string;
  /** The qcow2 the fingerprint was taken over. */
  qcow2: string;
}

/** The rendition when both files and its record exist and agree (the record is written before the tarball). */
export async function readLxdImage(store: Store, key: VersionKey): Promise<LxdImage | undefined> {
  const [qcow2, text, info] = await Promise.all([
    readQcow2(store, key),
    readFile(lxdRecordPath(store.root, key), 'utf8').catch(() => undefined),
    stat(lxdMetadataPath(store.root, key)).catch(() => undefined),
  ]);
  if (!qcow2 || text === undefined || !info) return undefined;
  let record: LxdRecord;
  try {
    record = JSON.parse(text) as LxdRecord;
  } catch {
    return undefined;
  }
  if (record.qcow2 !== qcow2.hash || record.size !== info.size) return undefined;
  return {
    qcow2,
    metadata: { path: lxdMetadataPath(store.root, key), size: info.size, sha256: record.sha256 },
    fingerprint: record.fingerprint,
  };
}

const yamlString = (text: string) => JSON.stringify(text);

/** metadata.yaml: what `lxc image info` shows and LXD needs to run the image (YAML's JSON-compatible strings). */
function metadataYaml(p: LxdProperties): string {
  return [
    `architecture: ${yamlString(p.architecture)}`,
    `creation_date: ${Math.floor(p.created)}`,
    'properties:',
    `  architecture: ${yamlString(p.architecture)}`,
    `  description: ${yamlString(p.description)}`,
    `  os: ${yamlString(p.os)}`,
    `  release: ${yamlString(p.release)}`,
    `  serial: ${yamlString(p.serial)}`,
    'templates: {}',
    '',
  ].join('\n');
}

/** The tarball's bytes: metadata.yaml alone, owned by root, dated at the version's timestamp (the same bytes every time). */
async function metadataTar(p: LxdProperties): Promise<Buffer> {
  const { pack } = await import('tar-stream');
  const tar = pack();
  const parts: Buffer[] = [];
  tar.on('data', (chunk) => void parts.push(chunk as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    tar.once('end', resolve);
    tar.once('error', reject);
  });
  const yaml = Buffer.from(metadataYaml(p));
  tar.entry(
    { name: 'metadata.yaml', mode: 0o644, uid: 0, gid: 0, mtime: new Date(Math.floor(p.created) * 1000) },
    yaml,
  );
  tar.finalize();
  await done;
  return Buffer.concat(parts);
}

/** xz of `data` by the system command (single-threaded: the same bytes for the same input). */
async function xz(ctx: Context, data: Buffer, signal: AbortSignal): Promise<Buffer> {
  const decoder = await ctx.decoder();
  const command = decoder?.kind === 'xz' ? decoder.path : 'xz';
  const { execa } = await import('execa');
  try {
    const { stdout } = await execa(command, ['-T1', '-6', '-c'], {
      input: data,
      encoding: 'buffer',
      cancelSignal: signal,
    });
    return Buffer.from(stdout);
  } catch (error) {
    if (signal.aborted) throw abortError(signal);
    throw new TemplatesError(
      'TOOL_MISSING',
      `cannot run xz to make LXD's metadata tarball: ${(error as Error).message.split('\n')[0]}`,
      { hint: 'install xz-utils' },
      { cause: error },
    );
  }
}

/** SHA-256 of the tarball's bytes then the qcow2's: LXD's fingerprint of a split image. */
async function fingerprintOf(tarball: Buffer, qcow2: string, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256').update(tarball);
  await pipeline(
    createReadStream(qcow2, { highWaterMark: 1024 * 1024 }),
    async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) hash.update(chunk);
    },
    { signal },
  );
  return hash.digest('hex');
}

/**
 * Makes the entry's LXD rendition unless it exists: its qcow2 (ensureQcow2), then, under the entry's lock, the metadata
 * tarball, its record (sha256, size, fingerprint) and the tarball by rename. NOT_STORED when the entry is gone.
 */
export async function ensureLxdImage(
  store: Store,
  key: VersionKey,
  context: Context,
  properties: LxdProperties,
  signal?: AbortSignal,
): Promise<LxdImage> {
  const existing = await readLxdImage(store, key);
  if (existing) return existing;
  // Its own lock first (flock is per open file: the two are taken one after the other, never nested).
  await ensureQcow2(store, key, context, signal);
  return withEntryLock(store, key, { ...(signal ? { signal } : {}), now: context.now }, async (lockSignal) => {
    const again = await readLxdImage(store, key);
    if (again) return again;
    const qcow2 = await readQcow2(store, key);
    if (!qcow2) throw notStored(store, key);
    const tarball = await xz(context, await metadataTar(properties), lockSignal);
    const fingerprint = await fingerprintOf(tarball, qcow2.path, lockSignal);
    const path = lxdMetadataPath(store.root, key);
    const temp = `${tempPrefix(store.root, key, randomBytes(6).toString('hex'))}.lxd.tar.xz`;
    const sha256 = createHash('sha256').update(tarball).digest('hex');
    try {
      await mkdir(dirname(temp), { recursive: true });
      await writeFile(temp, tarball);
      await fsyncPath(temp);
      const record: LxdRecord = { sha256, size: tarball.length, fingerprint, qcow2: qcow2.hash };
      await writeFileAtomic(lxdRecordPath(store.root, key), `${JSON.stringify(record)}\n`);
      await rename(temp, path);
      await fsyncDir(store.root);
    } catch (error) {
      await rm(temp, { force: true });
      throw storeIoError(error, path, "cannot write LXD's metadata tarball");
    }
    return { qcow2, metadata: { path, size: tarball.length, sha256 }, fingerprint };
  });
}

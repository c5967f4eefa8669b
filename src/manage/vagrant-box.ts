// A Vagrant libvirt box of a stored entry (docs/catalogues.md): a tar of metadata.json, a Vagrantfile and its qcow2, made once.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BOX_VAGRANTFILE, boxMetadata } from '../catalogues/vagrant.js';
import type { Context } from '../context.js';
import { abortError, storeIoError } from '../errors.js';
import { boxPath, boxRecordPath, imagePath, tempPrefix, type VersionKey } from '../store/layout.js';
import { withEntryLock } from '../store/lock.js';
import { fsyncDir } from '../store/commit.js';
import { notStored, type Store } from '../store/store.js';
import { fsyncPath, writeFileAtomic } from '../util/atomic-write.js';
import { tap } from '../util/tap.js';
import { ensureQcow2, readQcow2 } from './qcow2.js';

export interface VagrantBox {
  path: string;
  size: number;
  /** Hex SHA-256 of the box file: the catalogue's checksum. */
  sha256: string;
}

interface BoxRecord {
  sha256: string;
  size: number;
  /** The qcow2 the box holds. */
  qcow2: string;
}

/** The box when it and its record exist and agree (the record is written before the box). */
export async function readVagrantBox(store: Store, key: VersionKey): Promise<VagrantBox | undefined> {
  const [text, info, qcow2] = await Promise.all([
    readFile(boxRecordPath(store.root, key), 'utf8').catch(() => undefined),
    stat(boxPath(store.root, key)).catch(() => undefined),
    readQcow2(store, key),
  ]);
  if (text === undefined || !info || !qcow2) return undefined;
  try {
    const record = JSON.parse(text) as BoxRecord;
    if (record.size !== info.size || record.qcow2 !== qcow2.hash) return undefined;
    return { path: boxPath(store.root, key), size: info.size, sha256: record.sha256 };
  } catch {
    return undefined;
  }
}

/**
 * Makes `<entry>.box` unless it exists: the qcow2 (ensureQcow2), then under the entry's lock a plain tar (its bytes
 * depend only on the qcow2 and the version's timestamp) hashed as it is written, the record, and the box by rename.
 */
export async function ensureVagrantBox(
  store: Store,
  key: VersionKey,
  context: Context,
  timestamp: number,
  signal?: AbortSignal,
): Promise<VagrantBox> {
  const existing = await readVagrantBox(store, key);
  if (existing) return existing;
  // The qcow2 under its own hold of the lock first: flock is per open file, so the two are never nested.
  await ensureQcow2(store, key, context, signal);
  return withEntryLock(store, key, { ...(signal ? { signal } : {}), now: context.now }, async (lockSignal) => {
    const again = await readVagrantBox(store, key);
    if (again) return again;
    const qcow2 = await readQcow2(store, key);
    const image = await stat(imagePath(store.root, key)).catch(() => undefined);
    if (!qcow2 || !image) throw notStored(store, key);
    const path = boxPath(store.root, key);
    const temp = `${tempPrefix(store.root, key, randomBytes(6).toString('hex'))}.box`;
    const { pack } = await import('tar-stream');
    const hash = createHash('sha256');
    let size = 0;
    const mtime = new Date(Math.floor(timestamp) * 1000);
    try {
      await mkdir(dirname(temp), { recursive: true });
      const tar = pack();
      const written = pipeline(
        tar,
        tap((chunk) => {
          hash.update(chunk);
          size += chunk.length;
        }),
        createWriteStream(temp),
        { signal: lockSignal },
      );
      const file = { mode: 0o644, uid: 0, gid: 0, mtime };
      tar.entry({ name: 'metadata.json', ...file }, boxMetadata(image.size));
      tar.entry({ name: 'Vagrantfile', ...file }, BOX_VAGRANTFILE);
      const disk = tar.entry({ name: 'box.img', size: qcow2.size, ...file });
      await pipeline(createReadStream(qcow2.path, { highWaterMark: 1024 * 1024 }), disk, { signal: lockSignal });
      tar.finalize();
      await written;
      await fsyncPath(temp);
      const record: BoxRecord = { sha256: hash.digest('hex'), size, qcow2: qcow2.hash };
      await writeFileAtomic(boxRecordPath(store.root, key), `${JSON.stringify(record)}\n`);
      await rename(temp, path);
      await fsyncDir(store.root);
      return { path, size, sha256: record.sha256 };
    } catch (error) {
      await rm(temp, { force: true });
      if (lockSignal.aborted) throw abortError(lockSignal);
      throw storeIoError(error, path, 'cannot write the Vagrant box');
    }
  });
}

// An existing lago store is used as it is: its images count as present and nothing is downloaded.
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fetchTemplate, templateInfo, templatePath } from '../../src/index.js';
import { digestOf, makeDisk } from '../helpers/images.js';
import { lagoRepo, librarySetup, workspace, type Workspace } from '../helpers/env.js';

let ws: Workspace;
beforeEach(async () => {
  ws = await workspace();
});
afterEach(async () => {
  await ws.cleanup();
});

describe('a lago store', () => {
  it("serves lago's entries without any download, and ignores its leftover .tmp files", async () => {
    const image = await makeDisk(join(ws.dir, 'img.raw'), { sizeMiB: 8 });
    // Exactly what lago left in /var/lib/lago/store: image, .hash (SHA-1, no newline), .metadata, a stray .tmp.
    await mkdir(ws.store, { recursive: true });
    await copyFile(image, join(ws.store, 'phx_repo:centos7_host:v4'));
    await writeFile(join(ws.store, 'phx_repo:centos7_host:v4.hash'), await digestOf(image));
    await writeFile(
      join(ws.store, 'phx_repo:centos7_host:v4.metadata'),
      '{"distro": "el7", "root-partition": "/dev/sda1"}',
    );
    await writeFile(join(ws.store, 'phx_repo:centos7_engine:v5.tmp'), 'partial');
    const repo = await ws.writeRepo('phx', {
      ...lagoRepo('phx_repo', ws, {
        centos7_host: {
          v1: { source: 'web', handle: 'centos7/host/v1.qcow2', timestamp: 1428328144 },
          v4: { source: 'web', handle: 'centos7/host/v4.qcow2', timestamp: 1438179094 },
        },
      }),
    });
    const { store, repositories, context } = await librarySetup(ws, [repo]);

    const result = await fetchTemplate('phx_repo:centos7_host', { store, repositories, context });
    expect(result).toEqual({
      ref: 'phx_repo:centos7_host:v4',
      path: join(ws.store, 'phx_repo:centos7_host:v4'),
      status: 'cached',
      hash: await digestOf(image),
      format: null,
      size: 8 * 1024 * 1024,
    });
    expect(await templatePath('phx_repo:centos7_host:v4', { store, repositories })).toBe(result.path);
    expect((await templateInfo('phx_repo:centos7_host:v4', { store, repositories, offline: true })).metadata).toEqual({
      distro: 'el7',
      'root-partition': '/dev/sda1',
    });
    expect(await ws.requests()).toEqual([]);
    await expect(templatePath('phx_repo:centos7_host:v1', { store, repositories })).rejects.toMatchObject({
      code: 'NOT_STORED',
      fields: { ref: 'phx_repo:centos7_host:v1' },
    });
    expect(await ws.storeFiles()).toContain('phx_repo:centos7_engine:v5.tmp');
  });
});

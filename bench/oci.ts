// The OCI cases of the benchmark: push to and pull from a local docker-registry against curl doing the same transfer.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry, type RunningRegistry } from '../test/helpers/registry.js';
import { recordResult } from './serve.js';

export interface OciBenchContext {
  bin: string;
  work: string;
  /** The bench repository (nginx upstream). */
  repo: string;
  /** The multi-block .xz of the bench image, and its sha256 (hex). */
  xz: string;
  xzSha256: string;
  run: (
    command: string,
    args: string[],
    env?: Record<string, string>,
  ) => Promise<{ seconds: number; cpu: number; stdout?: string }>;
  shell: (script: string) => Promise<{ seconds: number; cpu: number }>;
  record: (name: string, seconds: number, extra?: { cpu?: number }) => void;
}

export interface OciFacts {
  /** Blobs a second push of the same template sent (should be none). */
  againUploaded: number;
}

export interface OciBench {
  round(round: number): Promise<OciFacts>;
  stop(): Promise<void>;
}

/** Starts the registry and fills a store that keeps the fetched .xz (what push uploads as is). */
export async function startOciBench(ctx: OciBenchContext): Promise<OciBench> {
  const dir = join(ctx.work, 'registry');
  await mkdir(dir, { recursive: true });
  const registry: RunningRegistry = await startRegistry(dir);
  const store = join(ctx.work, 'oci-kept');
  try {
    await ctx.run(process.execPath, [
      ctx.bin,
      'fetch',
      '-q',
      '--keep-xz',
      '--repo',
      ctx.repo,
      '--store',
      store,
      'bench:fast',
    ]);
  } catch (error) {
    await registry.stop();
    throw error;
  }
  const v2 = `http://${registry.host}/v2`;
  const digest = `sha256:${ctx.xzSha256}`;
  const timed = async (name: string, script: string) => {
    await ctx.shell('sync');
    recordResult(ctx, name, await ctx.shell(script));
  };
  return {
    async round(round) {
      // Each round pushes to repositories of its own: the registry has the blob, but not linked there, so it goes up whole.
      const target = `bench/push-${round}`;
      await timed(
        'curl -T of the blob to the registry (POST, PUT)',
        `loc=$(curl -sf -D - -o /dev/null -X POST ${v2}/bench/curl-${round}/blobs/uploads/ | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p') && curl -sf -o /dev/null -T ${ctx.xz} "$loc&digest=${digest}"`,
      );
      // What the store pushed before is mounted rather than sent: forget it so that this push uploads.
      await rm(join(store, '.oci'), { recursive: true, force: true });
      await ctx.shell('sync');
      recordResult(
        ctx,
        'push to the registry (kept .xz)',
        await ctx.run(process.execPath, [
          ctx.bin,
          'push',
          '-q',
          '--repo',
          ctx.repo,
          '--store',
          store,
          'bench:fast',
          `oci://${registry.host}/${target}:v1`,
        ]),
      );
      const again = await ctx.run(process.execPath, [
        ctx.bin,
        'push',
        '-q',
        '--json',
        '--repo',
        ctx.repo,
        '--store',
        store,
        'bench:fast',
        `oci://${registry.host}/${target}:v1`,
      ]);
      const againUploaded = Number(
        (JSON.parse(again.stdout!.trim().split('\n').pop()!) as { uploaded: number }).uploaded,
      );

      const out = join(ctx.work, 'oci-out');
      await mkdir(out, { recursive: true });
      await timed(
        'curl BLOB_URL | xz -T0 -dc > f; sync f',
        `cd ${out} && curl -sf ${v2}/${target}/blobs/${digest} | xz -T0 -dc > f && sync f`,
      );
      await rm(out, { recursive: true, force: true });
      const pulled = join(ctx.work, `oci-pull-${round}`);
      await ctx.shell('sync');
      recordResult(
        ctx,
        'fetch oci:// from the registry',
        await ctx.run(process.execPath, [
          ctx.bin,
          'fetch',
          '-q',
          '--store',
          pulled,
          `oci://${registry.host}/${target}:v1`,
        ]),
      );
      await rm(pulled, { recursive: true, force: true });
      return { againUploaded };
    },
    async stop() {
      await registry.stop();
      await rm(store, { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

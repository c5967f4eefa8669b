// Render progress events on stderr: cli-progress bars on a TTY, plain periodic lines otherwise (CI logs).
import type cliProgressTypes from 'cli-progress';
import type { ProgressEvent } from '../fetch/progress.js';
import type { IndexProgressEvent } from '../publish/progress.js';

/** Fetch and index progress; both render the same way (a bar per ref for the bytes phases). */
export type AnyProgressEvent = ProgressEvent | IndexProgressEvent;

export interface Renderer {
  onProgress(event: AnyProgressEvent): void;
  stop(): void;
}

const MiB = 1024 * 1024;

/** A server passed over: a warning, printed even with --quiet (it names a mirror to look at). */
const serverFailed = (event: Extract<ProgressEvent, { phase: 'server-failed' }>) =>
  `templates: warning: ${event.ref}: ${event.message} [${event.code}]; trying ${event.next}\n`;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

function barRenderer(stream: NodeJS.WriteStream, cliProgress: typeof cliProgressTypes): Renderer {
  const multi = new cliProgress.MultiBar(
    {
      stream,
      clearOnComplete: false,
      hideCursor: true,
      format: '{ref} [{bar}] {percentage}% {done}/{size}',
      formatValue: (value, _options, type) => (type === 'value' || type === 'total' ? mib(value) : String(value)),
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, cliProgressTypes.SingleBar>();
  return {
    onProgress(event) {
      if (event.phase !== 'download' && event.phase !== 'compress') {
        if (event.phase === 'server-failed') multi.log(serverFailed(event));
        else if (event.phase === 'convert') multi.log(`${event.ref}: converting ${event.format} to raw\n`);
        else if (event.phase === 'waiting-for-lock') multi.log(`${event.ref}: waiting for another process\n`);
        else if (event.phase === 'indexed') multi.log(`${event.ref}: ${event.status}\n`);
        return;
      }
      const total = event.total ?? 0;
      let bar = bars.get(event.ref);
      if (!bar) {
        bar = multi.create(total, 0, { ref: event.ref, done: mib(0), size: total ? mib(total) : '?' });
        bars.set(event.ref, bar);
      }
      bar.update(event.bytes, { done: mib(event.bytes) });
    },
    stop: () => multi.stop(),
  };
}

/** One line per ref at most every `intervalMs`, plus phase changes: readable in CI logs. */
function lineRenderer(stream: NodeJS.WritableStream, now: () => number, intervalMs = 5000): Renderer {
  const last = new Map<string, number>();
  return {
    onProgress(event) {
      const write = (text: string) => stream.write(`${event.ref}: ${text}\n`);
      switch (event.phase) {
        case 'download':
        case 'compress': {
          const previous = last.get(event.ref);
          const complete = event.total !== undefined && event.bytes >= event.total;
          if (previous !== undefined && now() - previous < intervalMs && !complete) return;
          if (previous === undefined) write(event.phase === 'download' ? `downloading ${event.location}` : 'compressing');
          last.set(event.ref, now());
          const percent = event.total ? ` (${Math.floor((event.bytes / event.total) * 100)}%)` : '';
          write(`${mib(event.bytes)}${event.total ? ` of ${mib(event.total)}` : ''}${percent}`);
          return;
        }
        case 'convert':
          return void write(`converting ${event.format} to raw`);
        case 'server-failed':
          return void stream.write(serverFailed(event));
        case 'waiting-for-lock':
          return void write('waiting for another process fetching it');
        case 'done':
        case 'indexed':
          return void write(event.status);
      }
    },
    stop() {},
  };
}

/** cli-progress is loaded only for a TTY, so scripts and CI do not pay for it at startup. */
export async function createRenderer(stream: NodeJS.WriteStream, quiet: boolean): Promise<Renderer> {
  if (quiet) return { onProgress: (event) => void (event.phase === 'server-failed' && stream.write(serverFailed(event))), stop() {} };
  if (!stream.isTTY) return lineRenderer(stream, Date.now);
  const { default: cliProgress } = await import('cli-progress');
  return barRenderer(stream, cliProgress);
}

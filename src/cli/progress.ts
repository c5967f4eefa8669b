// Render progress events on stderr: cli-progress bars on a TTY, plain periodic lines otherwise (CI logs).
import type cliProgressTypes from 'cli-progress';
import type { ProgressEvent } from '../fetch/progress.js';
import type { IndexProgressEvent } from '../publish/progress.js';

/** Fetch and index progress; both render the same way (a bar per ref for the bytes phases). */
type AnyProgressEvent = ProgressEvent | IndexProgressEvent;

export interface Renderer {
  onProgress(event: AnyProgressEvent): void;
  /** Writes a result or error line without breaking the bars (on a terminal, above them). */
  print(text: string, to: 'stdout' | 'stderr'): void;
  stop(): void;
}

/** Where the renderer's `print` writes. */
interface Outputs {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

const direct = (outputs: Outputs) => (text: string, to: 'stdout' | 'stderr') => void outputs[to].write(text);

const MiB = 1024 * 1024;

/** A server passed over: a warning, printed even with --quiet (it names a mirror to look at). */
const serverFailed = (event: Extract<ProgressEvent, { phase: 'server-failed' }>) =>
  `templates: warning: ${event.ref}: ${event.message} [${event.code}]; trying ${event.next}\n`;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/** "12.3 MiB/s" from bytes over seconds; "" before the first second's worth. */
const rate = (bytes: number, seconds: number) => (seconds >= 0.5 ? `${mib(bytes / seconds)}/s` : '');

/** "1m05s" / "42s" left at this rate; "" when unknown. */
function timeLeft(bytes: number, total: number, seconds: number): string {
  if (!total || bytes <= 0 || seconds < 0.5 || bytes >= total) return '';
  const left = Math.round(((total - bytes) * seconds) / bytes);
  return left >= 60 ? `${Math.floor(left / 60)}m${String(left % 60).padStart(2, '0')}s left` : `${left}s left`;
}

function barRenderer(
  stream: NodeJS.WriteStream,
  outputs: Outputs,
  now: () => number,
  cliProgress: typeof cliProgressTypes,
): Renderer {
  const multi = new cliProgress.MultiBar(
    {
      stream,
      clearOnComplete: false,
      hideCursor: true,
      format: '{ref} [{bar}] {percentage}% {done}/{size} {rate} {left}',
      formatValue: (value, _options, type) => (type === 'value' || type === 'total' ? mib(value) : String(value)),
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<string, { bar: cliProgressTypes.SingleBar; started: number }>();
  return {
    onProgress(event) {
      if (event.phase === 'done') {
        // A finished bar stays on its own line, full, with what the whole transfer averaged.
        const known = bars.get(event.ref);
        if (known) known.bar.update(known.bar.getTotal() || 1, { left: event.status });
        return;
      }
      if (event.phase !== 'download' && event.phase !== 'compress') {
        if (event.phase === 'server-failed') multi.log(serverFailed(event));
        else if (event.phase === 'convert') multi.log(`${event.ref}: converting ${event.format} to raw\n`);
        else if (event.phase === 'delta' || event.phase === 'delta-failed')
          multi.log(`${event.ref}: ${deltaLine(event)}\n`);
        else if (event.phase === 'waiting-for-lock') multi.log(`${event.ref}: waiting for another process\n`);
        else if (event.phase === 'indexed') multi.log(`${event.ref}: ${event.status}\n`);
        return;
      }
      const total = event.total ?? 0;
      let known = bars.get(event.ref);
      if (!known) {
        known = {
          bar: multi.create(total, 0, {
            ref: event.ref,
            done: mib(0),
            size: total ? mib(total) : '?',
            rate: '',
            left: '',
          }),
          started: now(),
        };
        bars.set(event.ref, known);
      }
      const seconds = (now() - known.started) / 1000;
      known.bar.update(event.bytes, {
        done: mib(event.bytes),
        rate: rate(event.bytes, seconds),
        left: timeLeft(event.bytes, total, seconds),
      });
    },
    // On the terminal the bars are drawn on, a line goes above them: logged, then drawn at once (stop() would drop it).
    print(text, to) {
      if (!outputs[to].isTTY || bars.size === 0) return void outputs[to].write(text);
      multi.log(text);
      multi.update();
    },
    stop: () => multi.stop(),
  };
}

/** What a delta fetch will move, or why it gave way to the whole file. */
function deltaLine(event: Extract<ProgressEvent, { phase: 'delta' | 'delta-failed' }>): string {
  if (event.phase === 'delta-failed')
    return `delta fetch failed (${event.message} [${event.code}]): fetching the whole file`;
  return `delta: ${mib(event.reusedBytes)} reused from stored images, fetching ${event.fetchedChunks} of ${event.chunks} chunks (${mib(event.fetchedBytes)})`;
}

/** One line per ref at most every `intervalMs`, plus phase changes: readable in CI logs. */
function lineRenderer(stream: NodeJS.WritableStream, outputs: Outputs, now: () => number, intervalMs = 5000): Renderer {
  const started = new Map<string, number>();
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
          if (previous === undefined) {
            write(event.phase === 'download' ? `downloading ${event.location}` : 'compressing');
            started.set(event.ref, now());
          }
          last.set(event.ref, now());
          const percent = event.total ? ` (${Math.floor((event.bytes / event.total) * 100)}%)` : '';
          const seconds = (now() - (started.get(event.ref) ?? now())) / 1000;
          const pace = [rate(event.bytes, seconds), timeLeft(event.bytes, event.total ?? 0, seconds)]
            .filter(Boolean)
            .join(', ');
          write(
            `${mib(event.bytes)}${event.total ? ` of ${mib(event.total)}` : ''}${percent}${pace ? `, ${pace}` : ''}`,
          );
          return;
        }
        case 'convert':
          return void write(`converting ${event.format} to raw`);
        case 'delta':
        case 'delta-failed':
          return void write(deltaLine(event));
        case 'server-failed':
          return void stream.write(serverFailed(event));
        case 'waiting-for-lock':
          return void write('waiting for another process fetching it');
        case 'done':
        case 'indexed':
          return void write(event.status);
      }
    },
    print: direct(outputs),
    stop() {},
  };
}

/**
 * Renders progress on `stream` (stderr); `stdout` is where results go (print). cli-progress is loaded only for a
 * TTY, so scripts and CI do not pay for it at startup.
 */
export async function createRenderer(
  stream: NodeJS.WriteStream,
  quiet: boolean,
  stdout: NodeJS.WriteStream = process.stdout,
): Promise<Renderer> {
  const outputs = { stdout, stderr: stream };
  if (quiet)
    return {
      onProgress: (event) => void (event.phase === 'server-failed' && stream.write(serverFailed(event))),
      print: direct(outputs),
      stop() {},
    };
  if (!stream.isTTY) return lineRenderer(stream, outputs, Date.now);
  const { default: cliProgress } = await import('cli-progress');
  return barRenderer(stream, outputs, Date.now, cliProgress);
}

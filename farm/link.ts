// A shaped network link on 127.0.0.1: a TCP proxy with bandwidth, latency and loss, byte counts, and faults (resets, stalls).
import { createServer, type Server, type Socket, connect } from 'node:net';

export interface LinkShape {
  /** Bits per second, each direction. */
  bitsPerSecond: number;
  /** One-way delay added to every byte, ms. */
  latencyMs: number;
  /** Probability that a packet (1448 bytes) is lost; each loss costs its chunk one retransmission (3 × latency, at least 5 ms). */
  loss: number;
}

type LinkFault = 'none' | 'reset' | 'stall';

export interface Link {
  /** The port clients connect to. */
  port: number;
  name: string;
  /** Bytes carried each way since the start. */
  bytes(): { down: number; up: number };
  /** reset: every connection is cut with a TCP reset once it has carried `afterBytes` (new ones too); stall: nothing moves. */
  fault(mode: LinkFault, afterBytes?: number): void;
  close(): Promise<void>;
}

const PACKET = 1448;
/** A direction holds at most this much before it pauses its source. */
const HIGH_WATER = 1 << 20;

interface Chunk {
  data: Buffer;
  due: number;
}

/** One direction of one connection: a delay line and a token bucket. */
class Pipe {
  private readonly queue: Chunk[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When the wire is free again (ms, performance clock). */
  private wireFree = 0;
  carried = 0;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly shape: LinkShape,
    private readonly random: () => number,
    private readonly stalled: () => boolean,
    private readonly count: (n: number) => void,
  ) {
    from.on('data', (data: Buffer) => {
      this.queue.push({ data, due: performance.now() + shape.latencyMs + this.lossDelay(data.length) });
      this.queued += data.length;
      if (this.queued > HIGH_WATER) from.pause();
      this.pump();
    });
  }

  private lossDelay(length: number): number {
    if (this.shape.loss <= 0) return 0;
    const packets = Math.ceil(length / PACKET);
    let delay = 0;
    for (let i = 0; i < packets; i++)
      if (this.random() < this.shape.loss) delay += Math.max(5, 3 * this.shape.latencyMs);
    return delay;
  }

  /** Sends what is due and the bucket allows; comes back when the next chunk is. */
  pump(): void {
    if (this.timer) return;
    const now = performance.now();
    if (this.stalled()) {
      this.timer = setTimeout(() => this.wake(), 100);
      return;
    }
    const bytesPerMs = this.shape.bitsPerSecond / 8 / 1000;
    while (this.queue.length) {
      const head = this.queue[0]!;
      const start = Math.max(head.due, this.wireFree);
      if (start > now + 1) {
        this.timer = setTimeout(() => this.wake(), Math.max(1, start - now));
        return;
      }
      this.queue.shift();
      this.queued -= head.data.length;
      this.wireFree = Math.max(now, this.wireFree) + head.data.length / bytesPerMs;
      this.carried += head.data.length;
      this.count(head.data.length);
      if (!this.to.destroyed) this.to.write(head.data);
    }
    if (this.queued <= HIGH_WATER && this.from.isPaused()) this.from.resume();
    if (this.ended && !this.to.destroyed) this.to.end();
  }

  private ended = false;
  end(): void {
    this.ended = true;
    if (!this.queue.length) this.to.end();
  }

  private wake(): void {
    this.timer = undefined;
    this.pump();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
  }
}

/** Listens on a free 127.0.0.1 port and forwards to 127.0.0.1:`target`, shaped. */
export async function startLink(
  name: string,
  target: number,
  shape: LinkShape,
  random: () => number = Math.random,
): Promise<Link> {
  let down = 0;
  let up = 0;
  let mode: LinkFault = 'none';
  let resetAfter = 0;
  const live = new Set<{ client: Socket; server: Socket; pipes: Pipe[] }>();
  const cut = (c: { client: Socket; server: Socket; pipes: Pipe[] }) => {
    for (const pipe of c.pipes) pipe.stop();
    c.client.resetAndDestroy();
    c.server.destroy();
    live.delete(c);
  };
  const server: Server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    const c = { client, server: upstream, pipes: [] as Pipe[] };
    live.add(c);
    const check = () => {
      if (mode === 'reset' && c.pipes.reduce((sum, pipe) => sum + pipe.carried, 0) >= resetAfter) cut(c);
    };
    const pipe = (from: Socket, to: Socket, add: (n: number) => void) =>
      new Pipe(
        from,
        to,
        shape,
        random,
        () => mode === 'stall',
        (n) => {
          add(n);
          check();
        },
      );
    const toServer = pipe(client, upstream, (n) => {
      up += n;
    });
    const toClient = pipe(upstream, client, (n) => {
      down += n;
    });
    c.pipes.push(toServer, toClient);
    client.on('end', () => toServer.end());
    upstream.on('end', () => toClient.end());
    const close = () => {
      for (const pipe of c.pipes) pipe.stop();
      client.destroy();
      upstream.destroy();
      live.delete(c);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', () => {
      // Let what is queued for the client drain first: the upstream closing is not the client's end.
      if (!c.pipes[1] || client.destroyed) close();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('link: no port');
  return {
    port: address.port,
    name,
    bytes: () => ({ down, up }),
    fault(next, afterBytes = 0) {
      mode = next;
      resetAfter = afterBytes;
      if (next === 'reset') for (const c of [...live]) if (afterBytes === 0) cut(c);
      if (next === 'none') for (const c of live) for (const pipe of c.pipes) pipe.pump();
    },
    async close() {
      for (const c of [...live]) cut(c);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

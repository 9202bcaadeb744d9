/** Raw-socket helpers: read exactly what the server put on the wire. */
import * as net from 'node:net';
import { setImmediate as tick } from 'node:timers/promises';
import type { Trade } from '../../ts/types';

/** A plain TCP connection on 127.0.0.1 that keeps every byte it receives. */
export class RawClient {
  readonly socket: net.Socket;
  data: Buffer = Buffer.alloc(0);
  ended = false;
  readonly connected: Promise<void>;

  constructor(port: number, opts: { read?: boolean } = {}) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => (this.ended = true));
    if (opts.read === false) this.socket.pause();
    else this.socket.on('data', (c: Buffer) => (this.data = Buffer.concat([this.data, c])));
  }

  /** Payloads of the complete frames received so far. */
  frames(): Buffer[] {
    return splitFrames(this.data).frames;
  }

  close(): void {
    this.socket.destroy();
  }
}

export function splitFrames(buf: Buffer): { frames: Buffer[]; rest: Buffer } {
  const frames: Buffer[] = [];
  let p = 0;
  while (buf.length - p >= 4) {
    const len = buf.readUInt32LE(p);
    if (buf.length - p - 4 < len) break;
    frames.push(buf.subarray(p + 4, p + 4 + len));
    p += 4 + len;
  }
  return { frames, rest: buf.subarray(p) };
}

/** Byte length of the first `n` frames of `buf`. */
export function framesLength(buf: Buffer, n: number): number {
  let p = 0;
  for (let i = 0; i < n; i++) p += 4 + buf.readUInt32LE(p);
  return p;
}

/**
 * Encodes and publishes `trades` in batches of 1..batchMax, yielding to the event loop between
 * batches so that connections are accepted mid-stream. `onBatch` sees the count published so far;
 * `stopWhen` ends the stream early. Returns how many trades were published.
 */
export async function publishStream(
  encodeBatch: (ts: readonly Trade[]) => Buffer,
  publish: (framed: Buffer) => void,
  trades: readonly Trade[],
  opts: { batchMax?: number; rand?: () => number; onBatch?: (published: number) => void; stopWhen?: () => boolean } = {},
): Promise<number> {
  const batchMax = opts.batchMax ?? 50;
  const rand = opts.rand ?? Math.random;
  let i = 0;
  while (i < trades.length && !opts.stopWhen?.()) {
    const n = Math.min(trades.length - i, 1 + Math.floor(rand() * batchMax));
    publish(encodeBatch(trades.slice(i, i + n)));
    i += n;
    opts.onBatch?.(i);
    await tick();
  }
  return i;
}

/** Drains a TcpClient in the background into arrays the test can watch. */
export function collect<E extends { kind: string }>(
  client: AsyncIterable<E>,
): { events: E[]; trades: Extract<E, { kind: 'trade' }>[]; done: Promise<void> } {
  const events: E[] = [];
  const trades: Extract<E, { kind: 'trade' }>[] = [];
  const done = (async () => {
    for await (const ev of client) {
      events.push(ev);
      if (ev.kind === 'trade') trades.push(ev as Extract<E, { kind: 'trade' }>);
    }
  })();
  return { events, trades, done };
}

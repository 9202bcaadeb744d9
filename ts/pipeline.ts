/**
 * The one pipeline: source -> codec -> transports. Every trade is parsed once (by the source) and
 * encoded once (here), and the same framed bytes go to every transport.
 *
 * Trades that arrive in one event-loop turn (one TCP read of the exchange socket can carry many
 * WebSocket frames) are encoded in one native call and handed off in one write per transport; the
 * flush runs as a microtask, so batching adds no timer delay.
 */
import { EventEmitter } from 'node:events';
import type { GapEvent, Trade } from './types';
import type { Stats } from './observe/stats';
import { noopLogger, type Logger } from './observe/logger';

/** What the pipeline needs of the codec's Encoder. */
export interface FrameEncoder {
  /** Asset symbols in wire order. */
  readonly symbols: readonly string[];
  encodeBatch(trades: readonly Trade[]): Buffer;
  gap(g: GapEvent): Buffer | null;
  heartbeat(nowMs: number): Buffer | null;
}

/** A destination of framed bytes (TCP fan-out, shm ring, NATS). */
export interface Transport {
  readonly name: string;
  /** Frames, each u32 LE length + payload; the same bytes for every transport. */
  publish(framed: Buffer): void;
  consumers(): number;
  drops(): number;
  close(): Promise<void>;
  /** Trades are missing and the wire format has no frame to say so (v1): tell consumers otherwise. */
  uncarriedGap?(g: GapEvent): void;
}

/** What the pipeline needs of a trade source (Binance, the local exchange, a replay). */
export interface TradeSource extends EventEmitter {
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface PipelineOptions {
  source: TradeSource;
  encoder: FrameEncoder;
  transports: Transport[];
  stats?: Stats;
  /** Send a heartbeat frame (v2) after this long without any frame; 0 disables. */
  heartbeatMs?: number;
  logger?: Logger;
}

/**
 * One hand-off of trades to the transports, for stats and benchmarks. The arrays are reused
 * between events: copy what you keep. Built only when someone listens to 'handoff'.
 */
export interface Handoff {
  count: number;
  /** Per trade: index into `pipeline.symbols`. */
  asset: ArrayLike<number>;
  tradeId: ArrayLike<number>;
  /** Exchange trade time, ms. */
  tradeTime: ArrayLike<number>;
  /** Per trade: monotonic receive time of its WebSocket frame, ns as a number (`process.hrtime.bigint()` clock). */
  recvMonoNs: ArrayLike<number>;
  /** Monotonic time the last transport's publish returned, ns. */
  sentMonoNs: number;
}

export interface PipelineEvents {
  handoff: [h: Handoff];
}

/** Reused per-trade columns of the 'handoff' event. */
class HandoffColumns {
  private cap = 0;
  private asset = new Float64Array(0);
  private tradeId = new Float64Array(0);
  private tradeTime = new Float64Array(0);
  private recv = new Float64Array(0);

  /** Fills the columns from trades and returns the event (views of length `n`). */
  fromTrades(batch: readonly Trade[], index: ReadonlyMap<string, number>, sentMonoNs: number): Handoff {
    const n = batch.length;
    this.reserve(n);
    for (let i = 0; i < n; i++) {
      const t = batch[i];
      this.asset[i] = index.get(t.symbol) ?? -1;
      this.tradeId[i] = t.tradeId;
      this.tradeTime[i] = t.tradeTime;
      this.recv[i] = Number(t.recvMonoNs);
    }
    return this.view(n, sentMonoNs);
  }

  private reserve(n: number): void {
    if (n <= this.cap) return;
    this.cap = Math.max(n, this.cap * 2, 64);
    this.asset = new Float64Array(this.cap);
    this.tradeId = new Float64Array(this.cap);
    this.tradeTime = new Float64Array(this.cap);
    this.recv = new Float64Array(this.cap);
  }

  private view(n: number, sentMonoNs: number): Handoff {
    return {
      count: n,
      asset: this.asset.subarray(0, n),
      tradeId: this.tradeId.subarray(0, n),
      tradeTime: this.tradeTime.subarray(0, n),
      recvMonoNs: this.recv.subarray(0, n),
      sentMonoNs,
    };
  }
}

export function frame(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32LE(payload.length, 0);
  payload.copy(out, 4);
  return out;
}

export class Pipeline extends EventEmitter<PipelineEvents> {
  /** Asset symbols in wire order: what `Handoff.asset` indexes. */
  readonly symbols: readonly string[];
  private readonly assetIndex = new Map<string, number>();
  private readonly columns = new HandoffColumns();
  private pending: Trade[] = [];
  private scheduled = false;
  private lastSendAt = Date.now();
  private heartbeatTimer?: NodeJS.Timeout;
  private readonly logger: Logger;
  private readonly flushBound = (): void => this.flush();
  private readonly onTrade = (t: Trade): void => {
    this.pending.push(t);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushBound);
    }
  };
  private readonly onGap = (g: GapEvent): void => {
    // A gap notice belongs after the trades before it: flush first to keep stream order.
    this.flush();
    this.opts.stats?.gap(g.symbol);
    const payload = this.opts.encoder.gap(g);
    if (payload) this.send(frame(payload));
    else for (const t of this.opts.transports) t.uncarriedGap?.(g);
  };
  /** Trades that could not be encoded (logged one by one); the consumer sees them as a gap. */
  rejected = 0;

  constructor(private readonly opts: PipelineOptions) {
    super();
    this.logger = opts.logger ?? noopLogger;
    this.symbols = Object.freeze([...opts.encoder.symbols]);
    this.symbols.forEach((s, i) => this.assetIndex.set(s, i));
    const stats = opts.stats;
    if (stats) this.on('handoff', (h) => stats.handoff(h, this.symbols));
  }

  /** Queues a trade or gap that arrived before start() (e.g. while references were awaited). */
  feed(item: Trade | GapEvent): void {
    if ('tradeId' in item) this.onTrade(item);
    else this.onGap(item);
  }

  /** Attaches to the source; starts it unless the caller already did (`startSource: false`). */
  async start(opts: { startSource?: boolean } = {}): Promise<void> {
    this.opts.source.on('trade', this.onTrade);
    this.opts.source.on('gap', this.onGap);
    const hb = this.opts.heartbeatMs ?? 1000;
    if (hb > 0) {
      this.heartbeatTimer = setInterval(() => this.heartbeat(hb), Math.max(10, Math.floor(hb / 4)));
      this.heartbeatTimer.unref();
    }
    if (opts.startSource !== false) await this.opts.source.start();
  }

  private heartbeat(intervalMs: number): void {
    const now = Date.now();
    if (now - this.lastSendAt < intervalMs) return;
    const payload = this.opts.encoder.heartbeat(now);
    // v1 has no heartbeat frame: nothing is sent, and lastSendAt is left as is.
    if (payload) this.send(frame(payload));
  }

  private send(framed: Buffer): void {
    this.lastSendAt = Date.now();
    for (const t of this.opts.transports) t.publish(framed);
  }

  /** Encodes and hands off everything pending. Called as a microtask; safe to call any time. */
  flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    let framed: Buffer;
    try {
      framed = this.opts.encoder.encodeBatch(batch);
    } catch (e) {
      this.flushOneByOne(batch, e);
      return;
    }
    this.send(framed);
    this.record(batch);
  }

  private flushOneByOne(batch: Trade[], first: unknown): void {
    this.logger.debug('batch encode failed; encoding trade by trade', { error: String(first) });
    for (const t of batch) {
      try {
        this.send(this.opts.encoder.encodeBatch([t]));
        this.record([t]);
      } catch (e) {
        this.rejected += 1;
        this.logger.error('trade could not be encoded and is not forwarded', {
          symbol: t.symbol,
          tradeId: t.tradeId,
          price: t.price,
          qty: t.qty,
          error: e instanceof Error ? e.message : String(e),
        });
        // The consumer must learn of it: announce the missing id as a gap.
        this.onGap({ symbol: t.symbol, lastId: t.tradeId - 1, nextId: t.tradeId + 1, reason: 'jump' });
      }
    }
  }

  private record(batch: Trade[]): void {
    if (this.listenerCount('handoff') === 0) return;
    const sent = Number(process.hrtime.bigint());
    this.emit('handoff', this.columns.fromTrades(batch, this.assetIndex, sent));
  }

  async stop(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.opts.source.off('trade', this.onTrade);
    this.opts.source.off('gap', this.onGap);
    await this.opts.source.stop();
    this.flush();
    await Promise.all(this.opts.transports.map((t) => t.close()));
  }
}

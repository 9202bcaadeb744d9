/**
 * The one pipeline: source -> codec -> transports. Every trade is parsed once (by the source) and
 * encoded once (here), and the same framed bytes go to every transport.
 *
 * Trades that arrive in one event-loop turn (one TCP read of the exchange socket can carry many
 * WebSocket frames) are encoded in one native call and handed off in one write per transport; the
 * flush runs as a microtask, so batching adds no timer delay, or, for a source that knows when a
 * socket read ends (BinanceSource with the builtin client), right then (`IngestLink.drain`).
 */
import { EventEmitter } from 'node:events';
import type { GapEvent, Trade } from './types';
import type { IngestRun, IngestState, RawFrames } from './codec/encoder';
import { HandoffColumns, type Handoff } from './handoff';
import type { Stats } from './observe/stats';
import { noopLogger, type Logger } from './observe/logger';

/** What the pipeline needs of the codec's Encoder. */
export interface FrameEncoder {
  /** Asset symbols in wire order. */
  readonly symbols: readonly string[];
  encodeBatch(trades: readonly Trade[]): Buffer;
  gap(g: GapEvent): Buffer | null;
  heartbeat(nowMs: number): Buffer | null;
  /** Rust parse + encode of a run of regular raw frames (`Encoder.ingest`); optional. */
  ingest?(frames: RawFrames, from: number, state: IngestState): IngestRun;
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
  /**
   * Called by Pipeline.start(): the pipeline owns heartbeats and publishes each to every transport
   * (per its `heartbeatMs`, none if 0), so a transport that would send heartbeats of its own must
   * stop: a v2 heartbeat takes a stream sequence number, and one sent on a single transport looks
   * like a lost frame to the consumers of all the others.
   */
  heartbeatsFromPipeline?(): void;
}

/** What the pipeline needs of a trade source (Binance, the local exchange, a replay). */
export interface TradeSource extends EventEmitter {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Raw frames queued by an ingest source, with their receive times. */
export interface QueuedFrames extends RawFrames {
  /** Per frame: monotonic receive time, ns as a number. */
  readonly recvMonoNs: Float64Array;
}

/** What a source gives the pipeline to parse and encode its raw frames in Rust (BinanceSource). */
export interface IngestPort {
  readonly frames: QueuedFrames;
  /** Per-asset last ids and blocked flags, in `symbols` order; the source's own state, kept up to date by it. */
  readonly state: IngestState;
  /** Frames `from .. from + n` were encoded by the fast path; `meta` = n × (asset, tradeId, tradeTime). */
  delivered(from: number, n: number, meta: Float64Array): void;
  /** Frame `i` goes through the source's full rules (it may emit 'trade' and 'gap'). */
  slow(i: number): void;
  /** Every queued frame was handled. */
  clear(): void;
}

/** What the pipeline gives the source when it attaches. */
export interface IngestLink {
  /** Wire order symbols; the source refuses (returns null) if its own order differs. */
  readonly symbols: readonly string[];
  /** A frame was queued: flush at the end of this turn. */
  wake(): void;
  /** Handle everything queued now (before the source changes state outside a frame). */
  drain(): void;
}

/** A source whose trades can take the fast path. */
export interface IngestSource extends TradeSource {
  attachIngest(link: IngestLink): IngestPort | null;
  detachIngest(): void;
}

function isIngestSource(s: TradeSource): s is IngestSource {
  return typeof (s as Partial<IngestSource>).attachIngest === 'function';
}

export interface PipelineOptions {
  source: TradeSource;
  encoder: FrameEncoder;
  transports: Transport[];
  stats?: Stats;
  /** Send a heartbeat frame (v2) after this long without any frame; 0 disables. */
  heartbeatMs?: number;
  logger?: Logger;
  /**
   * Where the exchange's JSON is parsed: 'rust' (default: regular frames are parsed and encoded in
   * one native call, `Encoder.ingest`) or 'js' (JSON.parse and a Trade object per frame).
   */
  parse?: 'rust' | 'js';
}

export type { Handoff } from './handoff';

export interface PipelineEvents {
  handoff: [h: Handoff];
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
  /** Flush at the end of this turn (one socket read's frames are one batch). */
  private readonly wake = (): void => {
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushBound);
    }
  };
  private readonly onTrade = (t: Trade): void => {
    this.pending.push(t);
    this.wake();
  };
  private readonly onGap = (g: GapEvent): void => {
    // A gap notice belongs after the trades before it: flush first to keep stream order.
    this.flush();
    this.opts.stats?.gap(g.symbol);
    const payload = this.gapNotice(g);
    if (payload) this.send(frame(payload));
    else for (const t of this.opts.transports) t.uncarriedGap?.(g);
  };
  /**
   * The gap's notice, or null when the wire has none for it (v1) or cannot write this one (a
   * rejected trade of id 0 has no last id): the transports then say so their own way. Never
   * throws: a gap that escaped as an exception would end the process and lose every later trade.
   */
  private gapNotice(g: GapEvent): Buffer | null {
    try {
      return this.opts.encoder.gap(g);
    } catch (e) {
      this.logger.error('gap notice could not be encoded; the transports signal the gap instead', {
        ...g,
        error: e instanceof Error ? e.message : String(e),
      });
      return null;
    }
  }
  private port?: IngestPort;
  private draining = false;
  /** Trades that could not be encoded (logged one by one); the consumer sees them as a gap. */
  rejected = 0;
  /** Trades parsed and encoded by the fast path (`Encoder.ingest`); the rest went through Trade objects. */
  fastTrades = 0;

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
    const { source, encoder } = this.opts;
    for (const t of this.opts.transports) t.heartbeatsFromPipeline?.();
    source.on('trade', this.onTrade);
    source.on('gap', this.onGap);
    if ((this.opts.parse ?? 'rust') === 'rust' && encoder.ingest && isIngestSource(source)) {
      this.port = source.attachIngest({ symbols: this.symbols, wake: this.wake, drain: this.flushBound }) ?? undefined;
    }
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
    for (const t of this.opts.transports) t.publish(framed);
    this.lastSendAt = Date.now();
  }

  /**
   * Encodes and hands off everything pending: trades emitted by the source, then the raw frames it
   * queued. Called as a microtask; safe to call any time.
   */
  flush(): void {
    this.scheduled = false;
    this.flushTrades();
    // Re-entered from a gap that a frame of the run being drained raised: its trades only.
    if (this.draining) return;
    const port = this.port;
    if (port && port.frames.count > 0) this.drainFrames(port);
  }

  /**
   * Runs of regular frames are parsed and encoded in one native call each; the frame a run stops at
   * goes through the source's full rules right there, and its output is handed off before the next
   * run, so the order on the wire is the order of the frames.
   */
  private drainFrames(port: IngestPort): void {
    const encoder = this.opts.encoder;
    const q = port.frames;
    const n = q.count;
    this.draining = true;
    try {
      let from = 0;
      while (from < n) {
        let run: IngestRun | undefined;
        try {
          run = encoder.ingest?.(q, from, port.state);
        } catch (e) {
          // Inconsistent arguments: a bug of ours, not the exchange's. Keep going on the slow path.
          this.logger.error('fast path refused its input; using the slow path', { error: String(e) });
        }
        const consumed = run?.consumed ?? 0;
        if (run && consumed > 0) {
          this.send(run.framed);
          this.recordRun(run.meta, consumed, q.recvMonoNs, from);
          this.fastTrades += consumed;
          port.delivered(from, consumed, run.meta);
          from += consumed;
        }
        if (from < n && (run === undefined || run.stop !== 'end' || consumed === 0)) {
          port.slow(from);
          from += 1;
          this.flushTrades();
        }
      }
    } finally {
      port.clear();
      this.draining = false;
    }
  }

  private flushTrades(): void {
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

  private recordRun(meta: Float64Array, n: number, recv: Float64Array, from: number): void {
    if (this.listenerCount('handoff') === 0) return;
    const sent = Number(process.hrtime.bigint());
    this.emit('handoff', this.columns.fromMeta(meta, n, recv, from, sent));
  }

  private record(batch: Trade[]): void {
    if (this.listenerCount('handoff') === 0) return;
    const sent = Number(process.hrtime.bigint());
    this.emit('handoff', this.columns.fromTrades(batch, this.assetIndex, sent));
  }

  async stop(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.flush();
    if (this.port && isIngestSource(this.opts.source)) this.opts.source.detachIngest();
    this.port = undefined;
    this.opts.source.off('trade', this.onTrade);
    this.opts.source.off('gap', this.onGap);
    await this.opts.source.stop();
    this.flush();
    await Promise.all(this.opts.transports.map((t) => t.close()));
  }
}

/**
 * BinanceSource: the live trade feed. Spreads symbols over connections (at most
 * `maxStreamsPerConnection` streams each), keeps every connection alive (ping/pong, data watchdog,
 * reconnect forever with capped jittered backoff), rotates each one before Binance's 24 h cut
 * make-before-break, drops duplicates by trade id and turns every hole in the ids into a gap event.
 */
import { EventEmitter } from 'node:events';
import { PerpSignalError } from '../errors';
import { noopLogger, RateLimitedLog, type Logger } from '../observe/logger';
import type { GapEvent, SymbolInfo, Trade } from '../types';
import { Backoff, sleep } from './backoff';
import { StreamConnection, type ConnectionOptions, type WsClient } from './connection';
import { checkUrl, DEFAULT_REST_URL, DEFAULT_WS_URL, REST_PROTOCOLS, WS_PROTOCOLS } from './endpoints';
import { parseFrame, receiveTimes, wallOfMono } from './parse';
import { FramePool } from './frame-pool';
import type { IngestLink, IngestPort } from '../pipeline';
import { RestClient } from './rest';
import { fetchReferences, validateSymbols } from './symbols';

export interface SourceOptions {
  /** Upper-case symbols, e.g. ['BTCUSDT', 'ETHUSDT']. */
  symbols: string[];
  /** WebSocket base (default wss://fstream.binance.com/public); `/stream?streams=...` is appended. */
  wsUrl?: string;
  /** REST base (default https://fapi.binance.com). */
  restUrl?: string;
  /** Reconnect a connection that delivers nothing for this long, ms (default 60 000; 0 = off). */
  watchdogMs?: number;
  /** Our own ping period, ms (default 30 000; 0 = off). */
  pingIntervalMs?: number;
  /** Pong deadline, ms (default 10 000). */
  pingTimeoutMs?: number;
  /** Handshake deadline, ms (default 10 000). */
  openTimeoutMs?: number;
  /**
   * WebSocket client: 'builtin' (default: our RFC 6455 reader, ~0.3 µs less per message) or 'ws'
   * (the `ws` package).
   */
  wsClient?: WsClient;
  /** Rotate each connection after this long, ms (default 23 h, inside Binance's 24 h limit). */
  rotationMs?: number;
  /** Longest wait for the new connection to overlap the old one during a rotation, ms (default 10 000). */
  rotationOverlapMs?: number;
  /** Reconnect backoff: first delay and cap, ms (defaults 250 and 30 000). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** A connection open this long resets its backoff, ms (default 60 000). */
  healthyMs?: number;
  /** Streams per connection (default 200, Binance's recommended maximum). */
  maxStreamsPerConnection?: number;
  /** API key: enables gap backfill from /fapi/v1/historicalTrades. Without it a gap is reported, not filled. */
  apiKey?: string;
  /** Largest gap backfilled, trades (default 10 000); larger gaps are only reported. */
  maxBackfill?: number;
  /** Recent REST trades averaged for the reference price (default 100). */
  refTrades?: number;
  /** REST attempts per request (default 4) and retry backoff base, ms (default 200). */
  restAttempts?: number;
  restBackoffMs?: number;
  logger?: Logger;
}

export interface SymbolStats {
  trades: number;
  gaps: number;
  missed: number;
  duplicates: number;
  backfilled: number;
  /**
   * Frames of this symbol refused as malformed (e.g. a trade id past 2^53), also in the source's
   * `malformed`; each is logged with its symbol (malformed frames of any symbol: at most 5 per
   * 10 s, then a count of the rest).
   */
  malformed: number;
  lastId?: number;
}

export interface SourceStats {
  /** Text frames received, all connections. */
  messages: number;
  trades: number;
  duplicates: number;
  gaps: number;
  /** Trades known missing (sum over gaps of nextId - lastId - 1), before any backfill. */
  missed: number;
  backfilled: number;
  reconnects: number;
  rotations: number;
  malformed: number;
  unknownEvents: number;
  errorFrames: number;
  /** Connections open now. */
  connections: number;
  perSymbol: Record<string, SymbolStats>;
}

/** Payload of the 'reconnect' event. */
export interface ReconnectEvent {
  connection: number;
  attempt: number;
  delayMs: number;
  reason: string;
}

/** Payload of the 'warning' event: something went wrong and was handled. */
export interface SourceWarning {
  code: string;
  message: string;
  symbol?: string;
}

export interface BackfillEvent {
  symbol: string;
  fromId: number;
  toId: number;
  count: number;
}

interface Pending {
  trade: Trade;
  raw?: string;
}

class SymState {
  private inWindow = false;
  private inBackfill = false;
  private heldTrades: Pending[] = [];
  overlapped = false;
  queue: Pending[] = [];
  stats: SymbolStats = { trades: 0, gaps: 0, missed: 0, duplicates: 0, backfilled: 0, malformed: 0 };

  /**
   * `ids` and `flags` are shared with the fast path (`Encoder.ingest` advances `ids` and reads
   * `flags`): one truth for both paths. `flags[index]` follows `blocked` as each of its inputs
   * changes, so the fast path never has to ask.
   */
  constructor(
    readonly index: number,
    private readonly ids: Float64Array,
    private readonly flags: Uint8Array,
  ) {}

  get lastId(): number | undefined {
    const v = this.ids[this.index];
    return Number.isNaN(v) ? undefined : v;
  }

  set lastId(v: number | undefined) {
    this.ids[this.index] = v ?? NaN;
  }

  /** Gaps found next are due to a connection window, not an id jump inside a connection. */
  get window(): boolean {
    return this.inWindow;
  }

  set window(v: boolean) {
    this.inWindow = v;
    this.sync();
  }

  get backfilling(): boolean {
    return this.inBackfill;
  }

  set backfilling(v: boolean) {
    this.inBackfill = v;
    this.sync();
  }

  /** Trades from a rotation's new connection that are ahead of the old one. */
  get held(): readonly Pending[] {
    return this.heldTrades;
  }

  hold(p: Pending): void {
    this.heldTrades.push(p);
    this.sync();
  }

  /** The first held trade, removed. */
  unhold(): Pending | undefined {
    const p = this.heldTrades.shift();
    this.sync();
    return p;
  }

  /** Every held trade, removed. */
  takeHeld(): Pending[] {
    const held = this.heldTrades;
    this.heldTrades = [];
    this.sync();
    return held;
  }

  /** Its frames must take the slow path: a reconnect window, a backfill or held trades pending. */
  get blocked(): boolean {
    return this.inWindow || this.inBackfill || this.heldTrades.length > 0;
  }

  private sync(): void {
    this.flags[this.index] = this.blocked ? 1 : 0;
  }
}

interface Slot {
  index: number;
  symbols: string[];
  url: string;
  conn?: StreamConnection;
  candidate?: StreamConnection;
  backoff: Backoff;
  timers: Set<NodeJS.Timeout>;
  rotateTimer?: NodeJS.Timeout;
}

/** Events of BinanceSource; 'frame' carries each accepted trade's raw text frame (for `record`). */
export interface SourceEvents {
  trade: [t: Trade];
  gap: [g: GapEvent];
  reconnect: [r: ReconnectEvent];
  rotate: [r: { connection: number }];
  backfill: [b: BackfillEvent];
  warning: [w: SourceWarning];
  frame: [text: string, recvWallNs: bigint];
}

export class BinanceSource extends EventEmitter<SourceEvents> {
  private readonly opts: SourceOptions;
  private readonly logger: Logger;
  private readonly badLog: RateLimitedLog;
  private readonly rest: RestClient;
  private readonly symbols: string[];
  private readonly state = new Map<string, SymState>();
  /** In `symbols` order; the memory behind every SymState.lastId and SymState.blocked. */
  private readonly lastIds: Float64Array;
  private readonly blocked: Uint8Array;
  private readonly bySymbolIndex: SymState[] = [];
  /** Set while a pipeline parses our frames in Rust (see attachIngest). */
  private ingest?: { link: IngestLink; pool: FramePool; tradeListeners: number };
  private readonly slots: Slot[] = [];
  private readonly counters = {
    messages: 0,
    trades: 0,
    duplicates: 0,
    gaps: 0,
    missed: 0,
    backfilled: 0,
    reconnects: 0,
    rotations: 0,
    malformed: 0,
    unknownEvents: 0,
    errorFrames: 0,
  };
  private running = false;
  private stopping = new AbortController();

  constructor(opts: SourceOptions) {
    super();
    if (!Array.isArray(opts.symbols) || opts.symbols.length === 0) {
      throw new PerpSignalError('E_NO_SYMBOLS', 'name at least one symbol, e.g. BTCUSDT');
    }
    checkUrl('wsUrl', opts.wsUrl, WS_PROTOCOLS, DEFAULT_WS_URL);
    checkUrl('restUrl', opts.restUrl, REST_PROTOCOLS, DEFAULT_REST_URL);
    this.opts = { ...opts };
    this.symbols = [...new Set(opts.symbols.map((s) => s.trim().toUpperCase()))];
    this.logger = opts.logger ?? noopLogger;
    this.badLog = new RateLimitedLog(this.logger);
    this.rest = new RestClient({
      restUrl: opts.restUrl ?? DEFAULT_REST_URL,
      apiKey: opts.apiKey,
      attempts: opts.restAttempts,
      backoffBaseMs: opts.restBackoffMs,
      logger: this.logger,
    });
    this.lastIds = new Float64Array(this.symbols.length).fill(NaN);
    this.blocked = new Uint8Array(this.symbols.length);
    this.symbols.forEach((s, i) => {
      const st = new SymState(i, this.lastIds, this.blocked);
      this.state.set(s, st);
      this.bySymbolIndex.push(st);
    });
  }

  /** Validates the symbols and fetches tick/step sizes and reference prices. Opens no socket. */
  async prepare(): Promise<SymbolInfo[]> {
    let info;
    try {
      info = await this.rest.exchangeInfo();
    } catch (e) {
      const err = e as PerpSignalError;
      throw new PerpSignalError(
        'E_EXCHANGE_INFO',
        `cannot read exchangeInfo from ${this.opts.restUrl ?? DEFAULT_REST_URL}: ${err.message}; check --rest-url and the network`,
      );
    }
    const infos = validateSymbols(info, this.symbols);
    await fetchReferences(this.rest, infos, {
      tradeLimit: this.opts.refTrades,
      logger: this.logger,
      onWarning: (symbol, message) => this.warn({ code: 'W_NO_REFERENCE', message, symbol }),
    });
    return infos;
  }

  /** Opens every connection; resolves once each has opened (retrying with backoff until stop()). */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.stopping = new AbortController();
    const per = Math.max(1, Math.min(this.opts.maxStreamsPerConnection ?? 200, 1024));
    const base = (this.opts.wsUrl ?? DEFAULT_WS_URL).replace(/\/+$/, '');
    for (let i = 0; i < this.symbols.length; i += per) {
      const symbols = this.symbols.slice(i, i + per);
      this.slots.push({
        index: this.slots.length,
        symbols,
        url: `${base}/stream?streams=${symbols.map((s) => `${s.toLowerCase()}@trade`).join('/')}`,
        backoff: new Backoff({ baseMs: this.opts.backoffBaseMs, maxMs: this.opts.backoffMaxMs }),
        timers: new Set(),
      });
    }
    await Promise.all(this.slots.map((slot) => this.connect(slot, 'start')));
  }

  async stop(): Promise<void> {
    this.drain();
    this.running = false;
    this.stopping.abort();
    const closing: Promise<void>[] = [];
    for (const slot of this.slots) {
      for (const t of slot.timers) clearTimeout(t);
      slot.timers.clear();
      if (slot.rotateTimer) clearTimeout(slot.rotateTimer);
      if (slot.conn) closing.push(slot.conn.close());
      if (slot.candidate) closing.push(slot.candidate.close());
      slot.conn = slot.candidate = undefined;
    }
    await Promise.all(closing);
    this.slots.length = 0;
  }

  stats(): SourceStats {
    const perSymbol: Record<string, SymbolStats> = {};
    for (const [s, st] of this.state) perSymbol[s] = { ...st.stats, lastId: st.lastId };
    return {
      ...this.counters,
      connections: this.slots.reduce((n, s) => n + (s.conn ? 1 : 0) + (s.candidate ? 1 : 0), 0),
      perSymbol,
    };
  }

  private connectionOptions(): ConnectionOptions {
    return {
      pingIntervalMs: this.opts.pingIntervalMs ?? 30_000,
      pingTimeoutMs: this.opts.pingTimeoutMs ?? 10_000,
      watchdogMs: this.opts.watchdogMs ?? 60_000,
      openTimeoutMs: this.opts.openTimeoutMs ?? 10_000,
      client: this.opts.wsClient ?? 'builtin',
    };
  }

  private later(slot: Slot, ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      slot.timers.delete(t);
      fn();
    }, ms);
    slot.timers.add(t);
  }

  /** Opens the slot's connection, retrying forever; resolves when open or stopped. */
  private async connect(slot: Slot, reason: string): Promise<void> {
    while (this.running) {
      const conn = new StreamConnection(slot.url, this.connectionOptions());
      this.wire(slot, conn);
      // Current before the handshake ends: frames can arrive in the same tick as 'open'.
      slot.conn = conn;
      try {
        await conn.open();
      } catch (e) {
        slot.conn = undefined;
        await conn.close();
        const delayMs = slot.backoff.next();
        this.counters.reconnects += 1;
        const ev = { connection: slot.index, attempt: slot.backoff.attempts, delayMs, reason: `open failed: ${(e as Error).message}` };
        this.logger.warn('stream connection failed, retrying', { ...ev, reason, url: slot.url });
        this.emit('reconnect', ev);
        await sleep(delayMs, this.stopping.signal);
        continue;
      }
      if (!this.running) {
        slot.conn = undefined;
        await conn.close();
        return;
      }
      this.logger.info('stream connected', { connection: slot.index, url: slot.url, streams: slot.symbols.length });
      this.later(slot, this.opts.healthyMs ?? 60_000, () => {
        if (slot.conn === conn) slot.backoff.reset();
      });
      this.scheduleRotation(slot);
      return;
    }
  }

  private wire(slot: Slot, conn: StreamConnection): void {
    conn.onText = (buf, start, end, mono) => this.onFrame(slot, conn, buf, start, end, mono);
    // The read's frames are queued: hand them off now, with no hop to a microtask.
    conn.onReadEnd = () => this.drain();
    conn.on('binary', (size) => {
      this.counters.malformed += 1;
      this.badLog.warn('binary', 'unexpected binary frame', { size, connection: slot.index });
    });
    conn.on('down', (why) => this.onDown(slot, conn, why));
  }

  private onDown(slot: Slot, conn: StreamConnection, why: string): void {
    if (!this.running) return;
    this.drain();
    if (conn === slot.candidate) {
      slot.candidate = undefined;
      this.logger.warn('rotation: new connection failed; keeping the old one', { connection: slot.index, why });
      this.scheduleRotation(slot, slot.backoff.next());
      return;
    }
    if (conn !== slot.conn) return;
    if (slot.candidate && slot.candidate.messages > 0) {
      // The old connection died mid-rotation: the new one already delivers, so switch now.
      this.promote(slot);
      return;
    }
    if (slot.candidate) {
      // The rotation's connection has not delivered yet: drop it and reconnect the usual way.
      void slot.candidate.close();
      slot.candidate = undefined;
    }
    slot.conn = undefined;
    if (slot.rotateTimer) clearTimeout(slot.rotateTimer);
    for (const s of slot.symbols) this.sym(s).window = true;
    const delayMs = slot.backoff.next();
    this.counters.reconnects += 1;
    const ev: ReconnectEvent = { connection: slot.index, attempt: slot.backoff.attempts, delayMs, reason: why };
    this.logger.warn('stream connection lost, reconnecting', { ...ev });
    this.emit('reconnect', ev);
    this.later(slot, delayMs, () => void this.connect(slot, why));
  }

  private scheduleRotation(slot: Slot, ms = this.opts.rotationMs ?? 23 * 3600_000): void {
    if (slot.rotateTimer) clearTimeout(slot.rotateTimer);
    slot.rotateTimer = setTimeout(() => void this.rotate(slot), ms);
  }

  /** Make-before-break: open a second connection; promote it once it overlaps the old one. */
  private async rotate(slot: Slot): Promise<void> {
    if (!this.running || !slot.conn || slot.candidate) return;
    this.drain();
    const cand = new StreamConnection(slot.url, this.connectionOptions());
    for (const s of slot.symbols) {
      const st = this.sym(s);
      st.overlapped = false;
      st.takeHeld();
    }
    slot.candidate = cand;
    this.wire(slot, cand);
    try {
      await cand.open();
    } catch (e) {
      await cand.close();
      if (slot.candidate === cand) slot.candidate = undefined;
      this.logger.warn('rotation: cannot open the new connection; retrying later', {
        connection: slot.index,
        error: (e as Error).message,
      });
      if (this.running) this.scheduleRotation(slot, slot.backoff.next());
      return;
    }
    if (slot.conn === cand) return; // it overlapped within the handshake's tick and is already promoted
    if (!this.running || slot.candidate !== cand) {
      await cand.close();
      return;
    }
    this.logger.info('rotation: new connection open, waiting for overlap', { connection: slot.index });
    this.later(slot, this.opts.rotationOverlapMs ?? 10_000, () => {
      if (slot.candidate === cand) this.promote(slot);
    });
  }

  private promote(slot: Slot): void {
    const cand = slot.candidate;
    if (!cand) return;
    this.drain();
    const old = slot.conn;
    slot.conn = cand;
    slot.candidate = undefined;
    this.counters.rotations += 1;
    for (const s of slot.symbols) {
      const st = this.sym(s);
      const held = st.takeHeld();
      if (held.length > 0) st.window = true;
      for (const p of held) this.accept(st, p);
    }
    this.logger.info('rotation complete', { connection: slot.index });
    this.emit('rotate', { connection: slot.index });
    if (old) void old.close();
    this.scheduleRotation(slot);
  }

  private sym(symbol: string): SymState {
    const st = this.state.get(symbol);
    if (!st) throw new PerpSignalError('E_INTERNAL', `no state for ${symbol}`);
    return st;
  }

  /**
   * Every text frame. With a pipeline attached (attachIngest), a frame of the slot's current
   * connection while no rotation is under way is queued raw for the pipeline's flush, which
   * parses and encodes the regular ones in Rust and hands the others back through `IngestPort.slow`; any
   * other frame first drains that queue (order), then takes the slow path here.
   */
  private onFrame(slot: Slot, conn: StreamConnection, buf: Buffer, start: number, end: number, mono: number): void {
    this.counters.messages += 1;
    const ing = this.ingest;
    if (ing) {
      if (conn === slot.conn && !slot.candidate && this.listenerCount('trade') === ing.tradeListeners) {
        ing.pool.push(buf, start, end, mono, slot.index);
        // A connection that says when a read ends is drained then (wire); otherwise at the end of the turn.
        if (!conn.readEnds) ing.link.wake();
        return;
      }
      this.drain();
    }
    const m = BigInt(mono);
    this.onText(slot, conn, buf.toString('utf8', start, end), wallOfMono(m), m);
  }

  private onText(slot: Slot, conn: StreamConnection, text: string, wall: bigint, mono: bigint): void {
    const r = this.classify(text, wall, mono, slot.index);
    if (!r) return;
    const { st, p } = r;
    if (conn === slot.candidate) {
      this.fromCandidate(slot, st, p);
      return;
    }
    if (conn !== slot.conn) return; // a closing connection's last frames
    this.current(st, p);
  }

  /** A trade frame of the slot's current connection. */
  private current(st: SymState, p: Pending): void {
    this.accept(st, p);
    if (st.held.length > 0) this.releaseHeld(st);
  }

  /** Parses a frame; counts and logs anything that is not a trade of ours. */
  private classify(text: string, wall: bigint, mono: bigint, connection: number): { st: SymState; p: Pending } | undefined {
    const f = parseFrame(text, wall, mono);
    switch (f.kind) {
      case 'trade':
        break;
      case 'malformed': {
        this.counters.malformed += 1;
        // A trade of ours refused: its symbol goes quiet if every later frame is refused too, so
        // say which symbol, counted per symbol. (A refused id that is readable is announced as a
        // gap by the next trade, whose id jumps past it.)
        const ours = f.symbol === undefined ? undefined : this.state.get(f.symbol);
        if (ours) ours.stats.malformed += 1;
        const symbol = ours ? f.symbol : undefined;
        const fields = { ...(symbol ? { symbol } : {}), sample: text.slice(0, 120), connection };
        this.badLog.warn('malformed', `malformed frame (${f.why}) ignored`, fields);
        return undefined;
      }
      case 'error':
        this.counters.errorFrames += 1;
        this.badLog.warn('error-frame', `exchange sent an error frame: ${f.msg}`, { code: f.code, connection });
        return undefined;
      case 'unknown':
        this.counters.unknownEvents += 1;
        this.badLog.warn('unknown', `unknown event '${f.event}' ignored`, { connection });
        return undefined;
      case 'result':
        return undefined;
    }
    const st = this.state.get(f.trade.symbol);
    if (!st) {
      this.counters.unknownEvents += 1;
      this.badLog.warn('foreign', `trade for unsubscribed symbol ${f.trade.symbol} ignored`);
      return undefined;
    }
    return { st, p: { trade: f.trade, raw: text } };
  }

  /**
   * Lets a pipeline parse and encode our frames in Rust (Pipeline with parse 'rust'). Refused
   * (null) when its asset order is not ours, since the last ids are shared by index.
   */
  attachIngest(link: IngestLink): IngestPort | null {
    if (link.symbols.length !== this.symbols.length || link.symbols.some((s, i) => s !== this.symbols[i])) return null;
    const pool = new FramePool();
    this.ingest = { link, pool, tradeListeners: this.listenerCount('trade') };
    return {
      frames: pool,
      state: { lastIds: this.lastIds, blocked: this.blocked },
      delivered: (from, n, meta) => this.deliveredFast(pool, from, n, meta),
      slow: (i) => {
        const mono = BigInt(pool.recvMonoNs[i]);
        const r = this.classify(pool.text(i), wallOfMono(mono), mono, pool.origin[i]);
        if (r) this.current(r.st, r.p);
      },
      clear: () => pool.clear(),
    };
  }

  detachIngest(): void {
    this.ingest = undefined;
  }

  /** Handles every queued frame now: before anything changes state outside a frame. */
  private drain(): void {
    if (this.ingest && this.ingest.pool.count > 0) this.ingest.link.drain();
  }

  /** Bookkeeping of trades the fast path encoded: counts, and 'frame' for `record`-like listeners. */
  private deliveredFast(pool: FramePool, from: number, n: number, meta: Float64Array): void {
    this.counters.trades += n;
    for (let k = 0; k < n; k++) this.bySymbolIndex[meta[3 * k]].stats.trades += 1;
    if (this.listenerCount('frame') === 0) return;
    for (let k = 0; k < n; k++) {
      this.emit('frame', pool.text(from + k), wallOfMono(BigInt(pool.recvMonoNs[from + k])));
    }
  }

  private fromCandidate(slot: Slot, st: SymState, p: Pending): void {
    const id = p.trade.tradeId;
    if (st.lastId === undefined || id <= st.lastId + 1) {
      st.overlapped = true;
      this.accept(st, p);
    } else {
      st.hold(p);
    }
    const ready = slot.symbols.every((s) => {
      const x = this.sym(s);
      return x.overlapped || x.lastId === undefined;
    });
    if (ready) this.promote(slot);
  }

  private releaseHeld(st: SymState): void {
    while (st.held.length > 0 && st.lastId !== undefined && st.held[0].trade.tradeId <= st.lastId + 1) {
      const p = st.unhold() as Pending;
      st.overlapped = true;
      this.accept(st, p);
    }
  }

  /** In-order delivery of one trade: drops duplicates, reports gaps, backfills when it can. */
  private accept(st: SymState, p: Pending): void {
    if (st.backfilling) {
      st.queue.push(p);
      return;
    }
    const t = p.trade;
    if (st.lastId !== undefined) {
      if (t.tradeId <= st.lastId) {
        this.counters.duplicates += 1;
        st.stats.duplicates += 1;
        return;
      }
      if (t.tradeId > st.lastId + 1) {
        const gap: GapEvent = { symbol: t.symbol, lastId: st.lastId, nextId: t.tradeId, reason: st.window ? 'reconnect' : 'jump' };
        const missed = t.tradeId - st.lastId - 1;
        this.counters.gaps += 1;
        this.counters.missed += missed;
        st.stats.gaps += 1;
        st.stats.missed += missed;
        this.logger.warn('trade gap', { ...gap, missed, backfill: this.canBackfill(missed) });
        this.emit('gap', gap);
        if (this.canBackfill(missed)) {
          st.window = false;
          st.backfilling = true;
          st.queue.push(p);
          void this.backfill(st, gap);
          return;
        }
      }
    }
    st.window = false;
    this.deliver(st, t, p.raw);
  }

  private deliver(st: SymState, t: Trade, raw: string | undefined): void {
    st.lastId = t.tradeId;
    st.stats.trades += 1;
    this.counters.trades += 1;
    this.emit('trade', t);
    if (raw !== undefined) this.emit('frame', raw, t.recvWallNs);
  }

  private canBackfill(missed: number): boolean {
    return this.opts.apiKey !== undefined && missed <= (this.opts.maxBackfill ?? 10_000);
  }

  /** Fetches the missing ids in order, delivers them, then the trades queued meanwhile. */
  private async backfill(st: SymState, gap: GapEvent): Promise<void> {
    let next = gap.lastId + 1;
    let count = 0;
    try {
      for (let page = 0; page < 100 && next < gap.nextId && this.running; page++) {
        const rows = await this.rest.historicalTrades(gap.symbol, next, Math.min(1000, gap.nextId - next));
        this.drain();
        if (rows.length === 0) break;
        for (const r of rows) {
          if (r.id < next || r.id >= gap.nextId) continue;
          const { wall, mono } = receiveTimes();
          this.deliver(
            st,
            {
              symbol: gap.symbol,
              tradeTime: r.time,
              eventTime: r.time,
              tradeId: r.id,
              price: r.price,
              qty: r.qty,
              maker: r.isBuyerMaker,
              type: 'MARKET',
              recvWallNs: wall,
              recvMonoNs: mono,
            },
            undefined,
          );
          next = r.id + 1;
          count += 1;
        }
      }
    } catch (e) {
      this.warn({ code: 'W_BACKFILL_FAILED', message: `backfill of ${gap.symbol} failed: ${(e as Error).message}`, symbol: gap.symbol });
    }
    this.counters.backfilled += count;
    st.stats.backfilled += count;
    this.emit('backfill', { symbol: gap.symbol, fromId: gap.lastId + 1, toId: next - 1, count });
    if (next < gap.nextId && count > 0) {
      this.warn({ code: 'W_BACKFILL_PARTIAL', message: `backfill of ${gap.symbol} stopped at id ${next - 1} of ${gap.nextId - 1}`, symbol: gap.symbol });
    }
    this.drain();
    st.backfilling = false;
    const queued = st.queue;
    st.queue = [];
    // The first queued trade is the one after the gap; any hole left is already reported.
    if (st.lastId !== undefined && queued.length > 0 && queued[0].trade.tradeId > st.lastId + 1) {
      st.lastId = queued[0].trade.tradeId - 1;
    }
    for (const p of queued) this.accept(st, p);
  }

  private warn(w: SourceWarning): void {
    this.logger.warn(w.message, { code: w.code, symbol: w.symbol });
    this.emit('warning', w);
  }
}

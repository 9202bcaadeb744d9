/**
 * Library consumer of the NATS feed: subscribes to `<prefix>.trades.<SYMBOL>` (or every symbol),
 * bootstraps from a snapshot requested on `<prefix>.snapshot`, and yields decoded messages as an
 * async iterator.
 *
 * Exactness rests on two facts. NATS keeps the order of one publisher's messages to one subscriber,
 * and the snapshot reply travels on the publisher's connection like its frames: so every frame that
 * arrives before the reply precedes the snapshot (skipped), and every frame after it follows the
 * snapshot. And each frame carries its asset's sequence number: a frame whose number is not the
 * next one of its asset means frames went missing (core NATS is at most once), so its decoded
 * content is thrown away, a `lost` event says so, and the consumer resyncs from a fresh snapshot.
 * A NATS reconnect (frames may have been lost while away) also resyncs.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { Decoder, type DecodedGap, type DecodedHeartbeat, type DecodedMessage, type DecodedTrade } from '../codec';
import { PerpSignalError } from '../errors';
import { noopLogger, RateLimitedLog, type Logger } from '../observe/logger';
import { connectOrExplain } from '../transports/nats';
import {
  encodePresence,
  natsSubjects,
  parsePresence,
  PRESENCE_EVERY_MS,
  PUBLISHER_HEADER,
  SEQ_HEADER,
  SEQS_HEADER,
  type NatsSubjects,
} from '../transports/nats-subjects';

export interface NatsConsumerOptions {
  /** Server URL(s), e.g. `nats://127.0.0.1:4222`. */
  url: string | string[];
  /** Subject prefix of the feed; default `perp`. */
  prefix?: string;
  /** Symbols to take (upper case); default all (`<prefix>.trades.>`). */
  symbols?: readonly string[];
  /** Wait this long for a snapshot reply before asking again; default 2000 ms. */
  snapshotTimeoutMs?: number;
  /** Delay before asking again after a failed snapshot request, doubled up to `retryMaxMs`; 100 / 2000 ms. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Give up the first connect after this long; default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * The forwarder sends a heartbeat when it has sent nothing for a while (1 s by default): with no
   * frame at all for this long the feed is taken as dead, `lost` (reason `idle`) says so and the
   * consumer asks for snapshots until a forwarder answers. Default 5000 ms; 0 disables.
   */
  idleTimeoutMs?: number;
  /**
   * Events queued for a reader that does not keep up; beyond this the consumer stops taking frames,
   * says `lost` (reason `overflow`), and resyncs once the reader has caught up. Default 1,000,000.
   */
  maxQueued?: number;
  logger?: Logger;
  name?: string;
}


export type SyncReason = 'start' | 'lost' | 'reconnect' | 'restart' | 'idle' | 'overflow' | 'undecodable';

/** Decoding (re)starts from a snapshot; every later trade is exact until a `lost` event. */
export interface SyncedEvent {
  kind: 'synced';
  /** 1 for the first snapshot, then one more per resync. */
  sync: number;
  reason: SyncReason;
  /** The symbols this consumer takes, in the feed's order: those asked for, else all of the feed's. */
  symbols: readonly string[];
}

/** Frames may be missing from here on (until the next `synced`): the consumer is resyncing. */
export interface LostEvent {
  kind: 'lost';
  reason: Exclude<SyncReason, 'start'>;
  /** The asset whose frames went missing, and how many (as the decoder tells; modulo 256 in v2). */
  symbol?: string;
  missing?: number;
  detail?: string;
}

export type NatsConsumerEvent = DecodedTrade | DecodedGap | DecodedHeartbeat | SyncedEvent | LostEvent;

export interface NatsConsumerStats {
  /** Snapshots taken (the first plus resyncs). */
  syncs: number;
  /** Frames received but not decoded: before a snapshot, or while resyncing. */
  skipped: number;
  /** Decoded messages handed to the reader. */
  messages: number;
  /** Sequence gaps detected. */
  lost: number;
}

const DEFAULTS = { snapshotTimeoutMs: 2000, retryMinMs: 100, retryMaxMs: 2000, idleTimeoutMs: 5000, maxQueued: 1_000_000 };

type State = 'syncing' | 'live' | 'closed';

export class NatsConsumer extends EventEmitter implements AsyncIterable<NatsConsumerEvent> {
  readonly subjects: NatsSubjects;
  private readonly logger: Logger;
  private readonly retryLog: RateLimitedLog;
  private readonly opts: typeof DEFAULTS;
  private readonly id = randomUUID();
  private readonly subs: Subscription[] = [];
  private readonly presenceTimer: NodeJS.Timeout;
  private readonly idleTimer?: NodeJS.Timeout;
  /** A frame came since the idle timer last looked. */
  private fresh = false;
  private idleArmed = false;
  private state: State = 'syncing';
  /** Bumped per sync attempt: a late reply to an abandoned attempt is ignored. */
  private attempt = 0;
  private syncReason: SyncReason = 'start';
  /** Snapshot replies come to `<inbox>.<attempt>`. */
  private readonly inbox = createInbox();
  private decoder?: Decoder;
  /** Id of the publisher whose snapshot the decoder started from. */
  private publisher?: string;
  /** Asset index of each trade subject of the current snapshot. */
  private subjectAsset = new Map<string, number>();
  /** `Perp-Seq` the next frame of each asset must carry; undefined when the publisher sends none. */
  private nextSeq?: number[];
  private retryMs: number;
  private retryTimer?: NodeJS.Timeout;
  /** Resync waits until the reader has drained an overflowed queue. */
  private resyncWhenDrained = false;
  /** Events not yet handed to the reader. */
  private queue: NatsConsumerEvent[] = [];
  /** Frame payloads received in this turn, not decoded yet. */
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private readonly flushBound = (): void => this.flushFrames();
  private waiter?: () => void;
  /** Why the consumer stopped by itself; the iterator throws it. */
  private failure?: PerpSignalError;
  private readonly symbols?: readonly string[];
  private counters: NatsConsumerStats = { syncs: 0, skipped: 0, messages: 0, lost: 0 };

  private constructor(
    private readonly nc: NatsConnection,
    subjects: NatsSubjects,
    symbols: readonly string[] | undefined,
    opts: NatsConsumerOptions,
  ) {
    super();
    this.subjects = subjects;
    this.symbols = symbols;
    this.logger = opts.logger ?? noopLogger;
    this.retryLog = new RateLimitedLog(this.logger);
    this.opts = { ...DEFAULTS };
    for (const k of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
      const v = opts[k];
      if (v !== undefined) this.opts[k] = v;
    }
    this.retryMs = this.opts.retryMinMs;
    const onFrame = (err: Error | null, msg: Msg): void => {
      if (!err) this.onFrame(msg);
    };
    const tradeSubjects = symbols ? symbols.map((s) => subjects.trades(s)) : [subjects.allTrades];
    for (const s of [...tradeSubjects, subjects.heartbeat]) this.subs.push(nc.subscribe(s, { callback: onFrame }));
    this.subs.push(nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => void (err || this.onReply(msg)) }));
    this.subs.push(nc.subscribe(subjects.publisher, { callback: (err, msg) => void (err || this.onPublisher(msg)) }));
    this.announce();
    this.presenceTimer = setInterval(() => this.announce(), PRESENCE_EVERY_MS);
    this.presenceTimer.unref();
    if (this.opts.idleTimeoutMs > 0) {
      this.idleTimer = setInterval(() => this.checkIdle(), this.opts.idleTimeoutMs);
      this.idleTimer.unref();
    }
    void this.watchStatus();
    this.sync('start');
  }

  /** Connects and starts the snapshot bootstrap; an unreachable server fails with `E_NATS_CONNECT`. */
  static async connect(opts: NatsConsumerOptions): Promise<NatsConsumer> {
    const subjects = natsSubjects(opts.prefix ?? 'perp');
    const symbols = opts.symbols?.map((s) => s.trim().toUpperCase()).filter((s) => s.length > 0);
    if (symbols && symbols.length === 0) {
      throw new PerpSignalError('E_NO_ASSETS', 'no symbols given: pass symbols like BTCUSDT, or none for all of them');
    }
    symbols?.forEach((s) => subjects.trades(s)); // validates each before connecting
    const nc = await connectOrExplain(opts.url, {
      name: opts.name ?? 'perp-signal consumer',
      timeout: opts.connectTimeoutMs ?? 5000,
    });
    return new NatsConsumer(nc, subjects, symbols, opts);
  }

  stats(): NatsConsumerStats {
    return { ...this.counters };
  }

  /** Stops taking frames and closes the connection; the iterator ends after what is queued. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearInterval(this.presenceTimer);
    if (this.idleTimer) clearInterval(this.idleTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wake();
    try {
      this.nc.publish(this.subjects.presence, encodePresence({ id: this.id, bye: true }));
      await this.nc.drain();
    } catch {
      await this.nc.close().catch(() => undefined);
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<NatsConsumerEvent> {
    for await (const batch of this.batches()) yield* batch;
  }

  /**
   * The same events, as arrays of everything that arrived since the last one: one await per batch
   * instead of one per message, for readers that want the highest rate.
   */
  async *batches(): AsyncGenerator<NatsConsumerEvent[]> {
    try {
      for (;;) {
        if (this.queue.length > 0) {
          const batch = this.queue;
          this.queue = [];
          if (this.resyncWhenDrained && this.state !== 'closed') {
            this.resyncWhenDrained = false;
            this.sync('overflow');
          }
          yield batch;
          continue;
        }
        if (this.state === 'closed') {
          if (this.failure) throw this.failure;
          return;
        }
        await new Promise<void>((r) => (this.waiter = r));
      }
    } finally {
      await this.close();
    }
  }

  /** Only the trades, for readers that do not care about resyncs. */
  async *trades(): AsyncGenerator<DecodedTrade> {
    for await (const ev of this) if (ev.kind === 'trade') yield ev;
  }

  private push(ev: NatsConsumerEvent): void {
    this.queue.push(ev);
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private announce(): void {
    try {
      this.nc.publish(this.subjects.presence, encodePresence({ id: this.id }));
    } catch {
      /* closed or reconnecting: the next announcement will do */
    }
  }

  /**
   * Frames stop being decoded now; decoding resumes from the snapshot this asks for. The reply comes
   * to this consumer's own inbox subscription, handled in arrival order with the frames (a request
   * promise would resolve a microtask later, after the frames that came in the same read).
   */
  private sync(reason: SyncReason): void {
    if (this.state === 'closed') return;
    this.state = 'syncing';
    this.decoder = undefined;
    this.syncReason = reason;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const attempt = ++this.attempt;
    try {
      this.nc.publish(this.subjects.snapshot, undefined, { reply: `${this.inbox}.${attempt}` });
    } catch (e) {
      return this.retrySync(attempt, e);
    }
    this.retryTimer = setTimeout(() => this.retrySync(attempt, 'no reply'), this.opts.snapshotTimeoutMs);
  }

  private retrySync(attempt: number, why: unknown): void {
    if (attempt !== this.attempt || this.state !== 'syncing') return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, this.opts.retryMaxMs);
    this.retryLog.warn('snapshot', 'nats snapshot request failed; asking again', {
      subject: this.subjects.snapshot,
      error: why instanceof Error ? why.message : String(why),
      retryMs: delay,
    });
    this.retryTimer = setTimeout(() => {
      if (attempt === this.attempt) this.sync(this.syncReason);
    }, delay);
  }

  private onReply(msg: Msg): void {
    this.flushFrames();
    const attempt = Number(msg.subject.slice(this.inbox.length + 1));
    if (attempt !== this.attempt || this.state !== 'syncing') return; // a late reply to an old request
    // The server answers 503 when nothing listens on the snapshot subject (no forwarder yet).
    if (msg.headers?.hasError) return this.retrySync(attempt, `no forwarder answers on ${this.subjects.snapshot} (${msg.headers.code})`);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.start(msg, this.syncReason);
  }

  private start(reply: Msg, reason: SyncReason): void {
    let decoder: Decoder;
    try {
      // Only the per-asset sequence counts: this consumer may not see every symbol's frames.
      decoder = new Decoder(reply.data, { checkStreamSeq: false });
      if (decoder.wire !== 'v2') throw new Error(`wire ${decoder.wire}`);
    } catch (e) {
      this.logger.error('nats snapshot reply is not a v2 header; asking again', {
        error: e instanceof Error ? e.message : String(e),
      });
      this.retrySync(this.attempt, e);
      return;
    }
    const unknown = this.symbols?.filter((sym) => !decoder.symbols.includes(sym)) ?? [];
    if (unknown.length > 0) {
      this.failure = new PerpSignalError(
        'E_UNKNOWN_SYMBOL',
        `the feed on ${this.subjects.prefix} carries no ${unknown.join(', ')}: it has ${decoder.symbols.join(', ')}`,
      );
      this.logger.error(this.failure.message);
      void this.close();
      return;
    }
    this.decoder = decoder;
    this.idleArmed = false;
    this.publisher = reply.headers?.get(PUBLISHER_HEADER) || undefined;
    this.subjectAsset = new Map(decoder.symbols.map((sym, i) => [this.subjects.trades(sym), i]));
    const seqs = reply.headers?.get(SEQS_HEADER)?.split(',').map(Number);
    this.nextSeq =
      seqs && seqs.length === decoder.symbols.length && seqs.every((n) => Number.isSafeInteger(n) && n >= 0)
        ? seqs.map((n) => n + 1)
        : undefined;
    this.state = 'live';
    this.retryMs = this.opts.retryMinMs;
    this.counters.syncs += 1;
    const wanted = this.symbols;
    const symbols = wanted ? decoder.symbols.filter((sym) => wanted.includes(sym)) : decoder.symbols;
    const ev: SyncedEvent = { kind: 'synced', sync: this.counters.syncs, reason, symbols };
    this.logger.info('nats consumer synced from a snapshot', { sync: ev.sync, reason });
    this.emit('synced', ev);
    this.push(ev);
  }

  /** Says frames may be missing; resyncs now, or (`wait`) when the connection is back. */
  private lose(ev: LostEvent, wait = false): void {
    this.counters.lost += 1;
    this.logger.warn('nats consumer lost frames; resyncing', { ...ev });
    this.emit('lost', ev);
    this.push(ev);
    if (!wait) return this.sync(ev.reason);
    this.state = 'syncing';
    this.decoder = undefined;
    this.attempt += 1;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  /**
   * Frames of one socket read arrive in one synchronous burst: they are gathered and decoded in one
   * native call (a microtask later, or before any other message is handled, to keep the order).
   */
  private onFrame(msg: Msg): void {
    this.fresh = true;
    if (this.state !== 'live') {
      this.counters.skipped += 1;
      return;
    }
    if (this.nextSeq && !this.checkSeq(msg)) return;
    if (this.pending.length === 0) queueMicrotask(this.flushBound);
    this.pending.push(msg.data);
    this.pendingBytes += 4 + msg.data.length;
  }

  /**
   * The full per-asset count in `Perp-Seq` sees a hole of any size, where the frame's own low byte
   * misses 256·k lost frames. On a hole, the frames before it are decoded, nothing from it on.
   */
  private checkSeq(msg: Msg): boolean {
    const a = this.subjectAsset.get(msg.subject);
    const next = this.nextSeq;
    const raw = msg.headers?.get(SEQ_HEADER);
    // A heartbeat, or bytes not from a publisher (the decoder tells what is wrong with them).
    if (a === undefined || !next || !raw) return true;
    const got = Number(raw);
    if (got === next[a]) {
      next[a] = got + 1;
      return true;
    }
    this.flushFrames();
    if (this.state !== 'live') return false;
    const symbol = this.decoder?.symbols[a];
    const missing = Number.isSafeInteger(got) && got > next[a] ? got - next[a] : undefined;
    this.lose({ kind: 'lost', reason: 'lost', symbol, missing, detail: `${SEQ_HEADER} ${raw}, expected ${next[a]}` });
    return false;
  }

  private flushFrames(): void {
    const frames = this.pending;
    if (frames.length === 0) return;
    const framed = Buffer.allocUnsafe(this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    const decoder = this.decoder;
    if (this.state !== 'live' || !decoder) {
      this.counters.skipped += frames.length;
      return;
    }
    let off = 0;
    for (const f of frames) {
      framed.writeUInt32LE(f.length, off);
      framed.set(f, off + 4);
      off += 4 + f.length;
    }
    let msgs: DecodedMessage[];
    try {
      msgs = decoder.decodeFrames(framed);
    } catch (e) {
      // Foreign bytes on our subjects. The frames of this burst before them are not handed out
      // either (they were decoded in the same call): the loss is reported, then resynced.
      this.lose({ kind: 'lost', reason: 'undecodable', detail: e instanceof Error ? e.message : String(e) });
      return;
    }
    for (const m of msgs) {
      if (m.kind === 'lost') {
        // A hole in an asset's sequence: nothing of this frame or after it is decoded from here.
        this.lose({ kind: 'lost', reason: 'lost', symbol: m.symbol, missing: m.missing });
        return;
      }
      if (m.kind !== 'trade' && m.kind !== 'gap' && m.kind !== 'heartbeat') continue;
      this.counters.messages += 1;
      this.queue.push(m);
    }
    this.wake();
    if (this.queue.length > this.opts.maxQueued) {
      this.state = 'syncing';
      this.decoder = undefined;
      this.resyncWhenDrained = true;
      this.counters.lost += 1;
      const ev: LostEvent = { kind: 'lost', reason: 'overflow', detail: `more than ${this.opts.maxQueued} events queued` };
      this.logger.warn('nats consumer reader is too slow; frames are skipped until it catches up', { ...ev });
      this.push(ev);
    }
  }

  /**
   * Armed by a frame after the snapshot, so a forwarder that answers but sends no heartbeats (they
   * can be turned off) is not taken for dead again and again.
   */
  private checkIdle(): void {
    const fresh = this.fresh;
    this.fresh = false;
    if (fresh) {
      this.idleArmed = this.state === 'live';
      return;
    }
    if (this.state !== 'live' || !this.idleArmed) return;
    this.idleArmed = false;
    this.lose({ kind: 'lost', reason: 'idle', detail: `no frame for ${this.opts.idleTimeoutMs} ms: is the forwarder running?` });
  }

  /** Another publisher took over the prefix (a restarted forwarder): its state is not ours. */
  private onPublisher(msg: Msg): void {
    this.flushFrames();
    const p = parsePresence(msg.data);
    if (!p || this.state !== 'live' || p.id === this.publisher) return;
    this.lose({ kind: 'lost', reason: 'restart', detail: `publisher ${p.id} started` });
  }

  private async watchStatus(): Promise<void> {
    let down = false;
    for await (const s of this.nc.status()) {
      if (this.state === 'closed') return;
      this.flushFrames();
      if (s.type === 'disconnect' && !down) {
        down = true;
        this.lose({ kind: 'lost', reason: 'reconnect', detail: `disconnected from ${s.server}` }, true);
      } else if (s.type === 'reconnect') {
        down = false;
        this.logger.info('nats consumer reconnected; resyncing', { server: s.server });
        this.sync('reconnect');
      }
    }
  }
}

/** Connects a consumer; iterate the result for decoded messages. */
export function connectNats(opts: NatsConsumerOptions): Promise<NatsConsumer> {
  return NatsConsumer.connect(opts);
}

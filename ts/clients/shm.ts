/**
 * Node consumer of a /dev/shm ring: `pop()` / zero-allocation `popInto()` for polling loops, and
 * async iterators that wait without blocking the event loop (spin, then yield, then sleep).
 */
import { EventEmitter } from 'node:events';
import { setImmediate as yieldOnce, setTimeout as sleep } from 'node:timers/promises';
import { Decoder, isStart, type DecodedMessage } from '../codec';
import { PerpSignalError, nativeCall } from '../errors';
import { binding } from '../native';
import { assertShmSupported } from '../platform';
import { FastRing, NATIVE } from './shm-fast';

/** The part of the addon this module wraps (crates/perp-signal-node/src/ring.rs). */
interface RingHeader {
  epoch: bigint;
  seq: number;
  pos: number;
  header: Buffer;
  state: Buffer;
}
interface RingConsumerHandle {
  popInto(buf: Uint8Array, spinPolls?: number): number;
  pop(): Buffer | number;
  lastSeq(): number;
  lastEvent(): { kind: string; count: number; epoch: bigint } | null;
  epochChanged(): boolean;
  requestHeader(): void;
  header(): RingHeader | null;
  resyncFromHeader(): RingHeader | null;
  stats(): Omit<ShmConsumerStats, 'jsFastPathPopped'>;
  producerAlive(): boolean;
  replaced(): boolean;
  close(): void;
  mapping(): ArrayBuffer | null;
  stateBlock(): ArrayBuffer | null;
}
interface RingConsumerBinding {
  RingConsumer: { open(name: string, latest: boolean): RingConsumerHandle };
}

const native = binding<RingConsumerBinding>();

/**
 * `popInto` for the iterators: a record larger than the scratch buffer grows it (x4) and is read
 * again, so the iterators never fail on a big record; other errors surface as PerpSignalError.
 * Returns the record length or a negative status code.
 */
function popGrowing(h: RingConsumerHandle, scratch: { buf: Buffer }, spinPolls: number): number {
  for (;;) {
    try {
      return h.popInto(scratch.buf, spinPolls);
    } catch (e) {
      if ((e as { code?: string }).code !== 'E_BUFFER_TOO_SMALL') nativeCall(() => { throw e; });
      scratch.buf = Buffer.allocUnsafe(scratch.buf.length * 4);
    }
  }
}

// popInto codes below zero, as crates/perp-signal-node/src/ring.rs defines them.
const EMPTY = -1;
const LOST = -2;
const EPOCH = -3;
const CLOSED = -4;

export interface ShmConsumerStats {
  /** Producer run the consumer follows. */
  epoch: bigint;
  /** Messages this consumer learnt were lost (drops seen as gaps, plus records skipped by resyncs). */
  lost: number;
  popped: number;
  producerPushed: number;
  producerDropped: number;
  producerPid: number;
  /** Bytes written and not yet read. */
  backlog: number;
  /** Of `popped`, the records read by the JS fast path (the rest went through N-API). */
  jsFastPathPopped: number;
}

/** Something that happened to the stream rather than a message. */
export type ShmEvent =
  /** The producer dropped `missing` messages (ring full) right before the next one. */
  | { kind: 'lost'; scope: 'ring'; missing: number }
  | { kind: 'epoch'; epoch: bigint }
  | { kind: 'closed' }
  | { kind: 'reopened' };

export interface ShmConsumerOptions {
  /** `oldest` (default): unread records already in the ring first; `latest`: only new ones. */
  start?: 'oldest' | 'latest';
  /**
   * Pop ordinary records in JS straight from the shared mapping, without an N-API call
   * (default true). Losses, restarts and resyncs always go through the native consumer; false
   * uses the native consumer for every record (same results, slower).
   */
  jsFastPath?: boolean;
}

/** How an iterator waits for data: spin, then yield to the event loop, then sleep. */
export interface ShmWaitOptions {
  /**
   * When the ring runs empty, polls repeated (in JS on the fast path, else in Rust; a few ns
   * each, no system call) before yielding to the event loop: the event loop is blocked for that
   * long. Default 2000.
   */
  spinPolls?: number;
  /** Empty polls that yield with setImmediate before sleeping. Default 200. */
  yieldPolls?: number;
  /** Sleep between polls once idle, ms. Default 1. */
  sleepMs?: number;
  /** After the producer closed: wait for a new one under the same name (default true) or end. */
  follow?: boolean;
  /** Stops the iterator. */
  signal?: AbortSignal;
}

/** Events of a decoding iterator besides ShmEvent. */
export type ShmDecodeEvent =
  | ShmEvent
  /** Decoding (re)starts at message `seq`; `skipped` records were passed over to get there. */
  | { kind: 'resync'; seq: number; skipped: number }
  /** A record failed to decode; the iterator resyncs from the next header copy. */
  | { kind: 'corrupt'; seq: number; message: string };

/** The header copy a decoder starts from. */
export interface ShmHeaderCopy {
  header: Buffer;
  /** Codec resume state stored with the header (empty if the producer gave none). */
  state: Buffer;
  /** Message number the header holds for. */
  seq: number;
}

/** One raw record with its message sequence number. */
export interface ShmRecord {
  kind: 'record';
  seq: number;
  payload: Buffer;
}

/** The v1 resume state of a header copy (`N x f64 LE` last trade times), or undefined if none. */
export function lastTimesOf(state: Buffer): number[] | undefined {
  if (state.length === 0 || state.length % 8 !== 0) return undefined;
  const out: number[] = [];
  for (let i = 0; i < state.length; i += 8) out.push(state.readDoubleLE(i));
  return out;
}

/** Waits per ShmWaitOptions; reset() after every message. */
export class Idler {
  private polls = 0;
  private readonly spin: number;
  private readonly yields: number;
  private readonly sleepMs: number;
  constructor(opts: ShmWaitOptions = {}) {
    this.spin = opts.spinPolls ?? 2000;
    this.yields = opts.yieldPolls ?? 200;
    this.sleepMs = opts.sleepMs ?? 1;
  }
  reset(): void {
    this.polls = 0;
  }
  /** Native spin polls for the next pop: the full spin right after data, none once idle. */
  get spinPolls(): number {
    return this.polls === 0 ? this.spin : 0;
  }
  /** True once the idler has reached its sleeping stage (a good time for slow checks). */
  get sleeping(): boolean {
    return this.polls >= this.yields;
  }
  async idle(): Promise<void> {
    this.polls += 1;
    if (this.polls <= this.yields) await yieldOnce();
    else await sleep(this.sleepMs);
  }
}

export class ShmConsumer extends EventEmitter {
  private handle: RingConsumerHandle | null;
  private fast: FastRing | null;
  /** Fast-path pops of the files this consumer followed before the current one. */
  private fastPopped = 0;
  private closedSeen = false;

  private constructor(
    handle: RingConsumerHandle,
    readonly name: string,
    private readonly latest: boolean,
    private readonly jsFastPath: boolean,
  ) {
    super();
    this.handle = handle;
    this.fast = jsFastPath ? FastRing.over(handle) : null;
  }

  /**
   * Attaches to `/dev/shm/<name>`. Throws PerpSignalError `E_NO_QUEUE` (no producer yet),
   * `E_QUEUE_BUSY` (another consumer is attached: the ring has one), `E_NOT_A_QUEUE`,
   * `E_BAD_LAYOUT`, `E_BAD_NAME`.
   */
  static open(name: string, opts: ShmConsumerOptions = {}): ShmConsumer {
    assertShmSupported();
    const latest = opts.start === 'latest';
    const h = nativeCall(() => native.RingConsumer.open(name, latest));
    return new ShmConsumer(h, name, latest, opts.jsFastPath ?? true);
  }

  private get h(): RingConsumerHandle {
    if (!this.handle) throw new PerpSignalError('E_CLOSED', `shm consumer ${this.name} is closed; open a new one`);
    return this.handle;
  }

  /** Turns a negative native code into an emitted event; returns it (null for "empty"). */
  private event(code: number): ShmEvent | null {
    if (code === EMPTY) return null;
    const e = this.h.lastEvent();
    let ev: ShmEvent;
    if (code === LOST) ev = { kind: 'lost', scope: 'ring', missing: e?.count ?? 0 };
    else if (code === EPOCH) ev = { kind: 'epoch', epoch: e?.epoch ?? 0n };
    else if (code === CLOSED) {
      if (this.closedSeen) return null;
      ev = { kind: 'closed' };
    } else return null;
    this.closedSeen = code === CLOSED;
    this.emit(ev.kind, ev);
    return ev;
  }

  /**
   * Next record as a new Buffer, or null when there is none. Losses, producer restarts and
   * shutdown are emitted as 'lost' / 'epoch' / 'closed' events and otherwise skipped.
   */
  pop(): Buffer | null {
    const h = this.h;
    if (this.fast) {
      const scratch = this.popScratch;
      const r = this.fast.pop(scratch);
      if (r >= 0) {
        this.closedSeen = false;
        return Buffer.from(scratch.subarray(0, r));
      }
      if (r !== NATIVE) return null;
    }
    const r = this.fromNative(() => h.pop());
    return typeof r === 'number' ? null : r;
  }

  /**
   * Copies the next record into `buf` without allocating: returns its length, or -1 when there
   * is none. Events as for pop(). Throws `E_BUFFER_TOO_SMALL` (record left in place) if `buf`
   * cannot hold it. `spinPolls`: while empty, poll again up to this many times (no system call,
   * a few ns each) before returning -1. With the JS fast path an ordinary record costs no N-API
   * call at all; without it (or for losses, restarts...) the polling happens inside Rust, so a
   * loop pays one N-API call per message rather than one per poll.
   */
  popInto(buf: Buffer, spinPolls = 0): number {
    const h = this.h;
    if (this.fast) {
      const r = this.fast.popSpin(buf, spinPolls);
      if (r >= 0) {
        this.closedSeen = false;
        return r;
      }
      if (r !== NATIVE) return -1;
    }
    return this.fromNative(() => h.popInto(buf, spinPolls)) as number;
  }

  /**
   * The native pop `call` until it gives a record (a Buffer, or a length >= 0) or finds the ring
   * empty or closed (-1); losses and producer restarts on the way are emitted as events.
   */
  private fromNative(call: () => Buffer | number): Buffer | number {
    for (let i = 0; i < 4; i++) {
      let r: Buffer | number;
      try {
        r = call();
      } catch (e) {
        return nativeCall(() => {
          throw e;
        });
      }
      if (typeof r !== 'number' || r >= 0) {
        this.closedSeen = false;
        return r;
      }
      this.event(r);
      if (r === EMPTY || r === CLOSED) return -1;
    }
    return -1;
  }

  /** Sequence number of the last record popped (-1 before the first). */
  lastSeq(): number {
    const h = this.h;
    return this.fast ? this.fast.lastSeq() : h.lastSeq();
  }

  stats(): ShmConsumerStats {
    return { ...this.h.stats(), jsFastPathPopped: this.fastPopped + (this.fast?.popped ?? 0) };
  }

  /** True while a live producer holds the ring (a system call: not for the hot path). */
  producerAlive(): boolean {
    return this.h.producerAlive();
  }

  /** Raw records; losses etc. are emitted as events (see pop()). Same as records(). */
  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer> {
    return this.records();
  }

  /** Raw records as an async iterator that waits per `opts`. */
  async *records(opts: ShmWaitOptions = {}): AsyncIterableIterator<Buffer> {
    for await (const m of this.messages(opts)) if (m.kind === 'record') yield m.payload;
  }

  /**
   * Records and stream events in order. After 'closed' it waits for a producer to reappear under
   * the same name and reattaches ('reopened'), unless `follow` is false, which ends the iterator.
   */
  async *messages(opts: ShmWaitOptions = {}): AsyncIterableIterator<ShmRecord | ShmEvent> {
    const idler = new Idler(opts);
    const follow = opts.follow ?? true;
    const scratch = { buf: Buffer.allocUnsafe(65536) };
    let closed = false;
    let lastCheck = 0;
    while (!opts.signal?.aborted && this.handle) {
      const r = this.next(scratch, idler.spinPolls);
      const buf = scratch.buf;
      if (r >= 0) {
        idler.reset();
        closed = false;
        yield { kind: 'record', seq: this.lastSeq(), payload: Buffer.from(buf.subarray(0, r)) };
        continue;
      }
      if (r === CLOSED) {
        if (!closed) {
          closed = true;
          yield { kind: 'closed' };
          if (!follow) return;
        }
        const now = Date.now();
        if (idler.sleeping && now - lastCheck >= 50) {
          lastCheck = now;
          if (this.reopen()) {
            closed = false;
            yield { kind: 'reopened' };
            continue;
          }
        }
        await idler.idle();
        continue;
      }
      if (r !== EMPTY) {
        const ev = this.event(r);
        if (ev) yield ev;
        continue;
      }
      await idler.idle();
    }
  }

  /**
   * Decodes records with decoders built from the producer's header copy. Starts (and, after a
   * loss, a producer restart or an undecodable record, restarts) from the newest header copy,
   * asking the producer for one when needed; yields `lost` (drops seen as a gap), `resync`,
   * `epoch`, `closed`, `reopened` and `corrupt` events in stream order between the values.
   */
  async *decodeWith<T>(
    makeDecoder: (h: ShmHeaderCopy) => (payload: Buffer) => T,
    opts: ShmWaitOptions = {},
  ): AsyncIterableIterator<T | ShmDecodeEvent> {
    const idler = new Idler(opts);
    const follow = opts.follow ?? true;
    const scratch = { buf: Buffer.allocUnsafe(65536) };
    let decode: ((payload: Buffer) => T) | null = null;
    let lostSeen = this.h.stats().lost;
    let lastRequest = 0;
    let closed = false;
    let lastCheck = 0;
    while (!opts.signal?.aborted && this.handle) {
      const h = this.h;
      if (!decode && !closed && !h.epochChanged()) {
        const copy = h.resyncFromHeader();
        if (copy) {
          decode = makeDecoder({ header: copy.header, state: copy.state, seq: copy.seq });
          const lost = h.stats().lost;
          yield { kind: 'resync', seq: copy.seq, skipped: lost - lostSeen };
          lostSeen = lost;
          continue;
        }
        const now = Date.now();
        // Ask once, then again now and then in case the producer restarted meanwhile.
        if (lastRequest === 0 || now - lastRequest >= 100) {
          h.requestHeader();
          lastRequest = now;
        }
        await idler.idle();
        continue;
      }
      const r = this.next(scratch, idler.spinPolls);
      const buf = scratch.buf;
      if (r >= 0) {
        idler.reset();
        closed = false;
        if (!decode) continue; // cannot happen: we only pop once a decoder exists
        try {
          yield decode(buf.subarray(0, r));
        } catch (e) {
          decode = null;
          lastRequest = 0;
          yield { kind: 'corrupt', seq: this.lastSeq(), message: e instanceof Error ? e.message : String(e) };
        }
        continue;
      }
      if (r === LOST || r === EPOCH) {
        const ev = this.event(r);
        decode = null;
        lastRequest = 0;
        if (r === LOST) lostSeen = h.stats().lost;
        if (ev) yield ev;
        continue;
      }
      if (r === CLOSED) {
        if (!closed) {
          closed = true;
          decode = null;
          yield { kind: 'closed' };
          if (!follow) return;
        }
        const now = Date.now();
        if (idler.sleeping && now - lastCheck >= 50) {
          lastCheck = now;
          if (this.reopen()) {
            closed = false;
            lastRequest = 0;
            lostSeen = this.h.stats().lost;
            yield { kind: 'reopened' };
            continue;
          }
        }
      }
      await idler.idle();
    }
  }

  /**
   * Decoded trades (and the codec's other messages) of a ring fed by ShmPublisher with
   * `headerSource: () => headerCopyOf(encoder)`, wire v1 or v2 as the header says. Starts from
   * the newest header copy; after a loss, a producer restart or an undecodable record it yields
   * the event and resyncs from a fresh header copy, so every trade it yields is exact.
   */
  async *decoded(opts: ShmWaitOptions = {}): AsyncIterableIterator<DecodedMessage | ShmDecodeEvent> {
    const it = this.decodeWith((h) => {
      const d = new Decoder(h.header, { lastTimes: lastTimesOf(h.state) });
      return (p: Buffer): DecodedMessage | null => (isStart(p) ? null : d.decode(p));
    }, opts);
    for await (const m of it) if (m !== null) yield m;
  }

  /** After the producer closed: attach to a new file under the same name, if there is one. */
  reopen(): boolean {
    if (!this.h.replaced()) return false;
    let next: RingConsumerHandle;
    try {
      next = native.RingConsumer.open(this.name, this.latest);
    } catch {
      return false; // not there yet, or not ready: try again later
    }
    this.fast?.release();
    this.h.close();
    this.handle = next;
    this.fastPopped += this.fast?.popped ?? 0;
    this.fast = this.jsFastPath ? FastRing.over(next) : null;
    this.closedSeen = false;
    return true;
  }

  /** The producer's current header copy (without moving), or null if it wrote none yet. */
  header(): ShmHeaderCopy | null {
    const c = this.h.header();
    return c ? { header: c.header, state: c.state, seq: c.seq } : null;
  }

  /** Detaches (another consumer may then attach). Idempotent. */
  close(): void {
    this.fast?.release(); // so the next consumer starts right after the last record we took
    this.handle?.close();
    this.handle = null;
    this.fast = null;
  }

  /** The iterators' pop: the JS fast path first (spinning in JS), else the native consumer. */
  private next(scratch: { buf: Buffer }, spinPolls: number): number {
    if (this.fast) {
      const r = this.fast.popSpin(scratch.buf, spinPolls);
      if (r !== NATIVE) return r;
    }
    return popGrowing(this.h, scratch, this.fast ? 0 : spinPolls);
  }

  /** pop()'s copy-out buffer for the fast path (a larger record goes through native pop). */
  private readonly popScratch = Buffer.allocUnsafe(65536);
}

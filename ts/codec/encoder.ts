import { PerpSignalError, nativeCall } from '../errors';
import { binding } from '../native';
import type { GapEvent, Trade } from '../types';
import type { AssetSpec, WireVersion } from './types';

/** The part of the addon this module wraps (crates/perp-signal-node/src/codec.rs). */
interface NativeJoiner {
  header(): Buffer;
  caughtUp(): boolean;
  adapt(frames: Uint8Array): Buffer | null;
}

interface NativeEncoder {
  /**
   * `nums`: 7 f64 per trade (asset, time, tradeId, maker, and the lengths of price, qty, type);
   * `text`: price, qty and type of every trade back to back, Latin-1. `framed`: u32-LE framed
   * batch out; else exactly one trade in and its bare payload out.
   */
  encodePacked(nums: Uint8Array, text: Uint8Array, framed: boolean): Buffer;
  /** Raw trade frames (JSON, '\n'-separated) to u32-LE frames; `meta`: count, then 3 f64 per trade. */
  encodeJson(lines: Uint8Array, meta: Float64Array): Buffer;
  /** The fast path: `meta` gets consumed, stop code, then 3 f64 per trade; `lastIds` advanced in place. */
  ingest(pool: Uint8Array, ends: Uint32Array, from: number, lastIds: Float64Array, blocked: Uint8Array, meta: Float64Array): Buffer;
  header(): Buffer;
  snapshot(): Buffer;
  heartbeat(nowMs: number): Buffer | null;
  gap(asset: number, lastId: number, nextId: number, reason: number): Buffer | null;
  stateV1(): number[] | null;
  join(): NativeJoiner;
}

export interface EncoderBinding {
  NativeEncoder: new (wire: string, assets: AssetSpec[], refTime: number) => NativeEncoder;
}

const native = binding<EncoderBinding>();

/** f64 slots per trade of a packed batch (crates/perp-signal-node/src/codec.rs `SLOTS`). */
const SLOTS = 7;

/**
 * A consumer that starts now: send it `header` first, then pass every later framed batch through
 * `adapt(frames)`, which returns the very same Buffer once nothing needs rewriting. In v1 it
 * rewrites the time delta of the first frame of each asset after the join (the v1 header has one
 * timestamp for all assets); in v2 the header carries every asset's state and adapt is the identity.
 */
export interface Joiner {
  readonly header: Buffer;
  adapt(frames: Buffer): Buffer;
  readonly caughtUp: boolean;
}

class JoinerImpl implements Joiner {
  readonly header: Buffer;
  private done: boolean;

  constructor(private readonly inner: NativeJoiner) {
    this.header = inner.header();
    this.done = inner.caughtUp();
  }

  get caughtUp(): boolean {
    return this.done;
  }

  adapt(frames: Buffer): Buffer {
    if (this.done) return frames;
    const out = nativeCall(() => this.inner.adapt(frames));
    this.done = this.inner.caughtUp();
    return out ?? frames;
  }
}

export interface EncoderOptions {
  wire: WireVersion;
  assets: AssetSpec[];
  /** Reference timestamp, ms since the Unix epoch (default: now). */
  refTime?: number;
}

/** What `Encoder.encodeJsonLines` gives: the frames and what the caller needs per trade. */
export interface JsonBatch {
  /** u32-LE framed messages, one per trade, in order. */
  framed: Buffer;
  /** Trades encoded (= non-empty lines). */
  count: number;
  /** `count` × (asset index, tradeId, tradeTime), for gap and duplicate checks. A view, valid until the next call. */
  meta: Float64Array;
}

/** Raw exchange frames back to back in one buffer: frame `i` is `pool[ends[i - 1] ?? 0 .. ends[i]]`. */
export interface RawFrames {
  pool: Uint8Array;
  /** End offsets; only the first `count` are read. */
  ends: Uint32Array;
  count: number;
}

/** Per-asset state in the encoder's asset order, shared with the source that owns it. */
export interface IngestState {
  /** Last delivered trade id per asset, NaN = unknown; `ingest` advances it for every trade it encodes. */
  lastIds: Float64Array;
  /** Non-zero: that asset's frames need the source's slow path. */
  blocked: Uint8Array;
}

/** `ingest`'s stop codes, indexed by the native stop number (0 = end, then core `ingest::Irregular::code`). */
const INGEST_STOPS = ['end', 'not-a-trade', 'unknown-symbol', 'blocked', 'first-trade', 'out-of-sequence', 'encode-failed'] as const;

/** Why `ingest` stopped: 'end' (every frame consumed), else what makes the next frame irregular. */
export type IngestStop = (typeof INGEST_STOPS)[number];

/** What `Encoder.ingest` gives: the frames of the regular run and what the caller needs per trade. */
export interface IngestRun {
  /** u32-LE framed messages, one per consumed frame, in order. */
  framed: Buffer;
  /** Frames consumed from `from` on; frame `from + consumed` (if any) is irregular. */
  consumed: number;
  stop: IngestStop;
  /** `consumed` × (asset index, tradeId, tradeTime). A view, valid until the next call. */
  meta: Float64Array;
}

/** Smallest trade frame the encoder can accept (all of e, E, T, s, t, p, q, m present) plus '\n'. */
const MIN_JSON_FRAME = 48;

/** Per-asset state a v1 decoder needs besides a header to resume mid-stream. */
export interface V1State {
  /** Each asset's last trade time (ms), in asset order. */
  lastTimes: number[];
}

/** Turns trades into wire frames (v1 or v2); keeps the delta state. */
export class Encoder {
  readonly wire: WireVersion;
  readonly symbols: readonly string[];
  private readonly native: NativeEncoder;
  private readonly index = new Map<string, number>();
  private nums = new Float64Array(SLOTS * 1024);
  private meta = new Float64Array(1 + 3 * 1024);

  constructor(opts: EncoderOptions) {
    if (opts.wire !== 'v1' && opts.wire !== 'v2') {
      throw new PerpSignalError('E_INVALID_ARG', `wire must be 'v1' or 'v2', got ${String(opts.wire)}`);
    }
    this.wire = opts.wire;
    const assets = opts.assets.map((a) => ({ ...a }));
    this.native = nativeCall(() => new native.NativeEncoder(opts.wire, assets, opts.refTime ?? Date.now()));
    this.symbols = Object.freeze(assets.map((a) => a.symbol));
    this.symbols.forEach((s, i) => this.index.set(s, i));
  }

  /** Index of `symbol` on the wire; throws `E_UNKNOWN_SYMBOL`. */
  assetIndex(symbol: string): number {
    const i = this.index.get(symbol);
    if (i === undefined) {
      throw new PerpSignalError(
        'E_UNKNOWN_SYMBOL',
        `unknown symbol ${JSON.stringify(symbol)}: the encoder carries ${this.symbols.join(', ')}`,
      );
    }
    return i;
  }

  /** One frame payload (no length prefix). */
  encode(trade: Trade): Buffer {
    return this.packed([trade], false);
  }

  /**
   * Frames (u32-LE length + payload each), concatenated, in one native call. All or nothing: on
   * error nothing of the batch is encoded and the error names the trade.
   */
  encodeBatch(trades: readonly Trade[]): Buffer {
    return this.packed(trades, true);
  }

  /**
   * Parses raw exchange frames (combined-stream or bare trade JSON, one per line) in Rust and
   * encodes them in the same native call, skipping JS objects altogether. All or nothing; errors:
   * `E_BAD_JSON` (syntax, or a kept field of the wrong type), `E_NOT_A_TRADE` (another event or a
   * missing field), `E_UNKNOWN_SYMBOL`, and the encoder's own (`E_BAD_DECIMAL`, ...).
   */
  encodeJsonLines(lines: Uint8Array): JsonBatch {
    const need = 1 + 3 * (Math.ceil(lines.length / MIN_JSON_FRAME) + 1);
    if (this.meta.length < need) this.meta = new Float64Array(need);
    const meta = this.meta;
    const framed = nativeCall(() => this.native.encodeJson(lines, meta));
    const count = meta[0];
    return { framed, count, meta: meta.subarray(1, 1 + 3 * count) };
  }

  /**
   * The forwarder's fast path: parses raw frames `from..count` in Rust and encodes them while they
   * are *regular* (a trade of a known asset that is not blocked, with id = its last id + 1), in one
   * native call, advancing `state.lastIds`. Stops before the first irregular frame, which the caller
   * handles with its full rules before calling again after it. Throws (`E_INVALID_ARG`) only for
   * inconsistent arguments, then changes nothing.
   */
  ingest(frames: RawFrames, from: number, state: IngestState): IngestRun {
    const need = 2 + 3 * Math.max(0, frames.count - from);
    if (this.meta.length < need) this.meta = new Float64Array(Math.max(need, 2 * this.meta.length));
    const meta = this.meta;
    const ends = frames.count === frames.ends.length ? frames.ends : frames.ends.subarray(0, frames.count);
    const framed = nativeCall(() => this.native.ingest(frames.pool, ends, from, state.lastIds, state.blocked, meta));
    const consumed = meta[0];
    return { framed, consumed, stop: INGEST_STOPS[meta[1]] ?? 'end', meta: meta.subarray(2, 2 + 3 * consumed) };
  }

  /** Packs trades for one native call: numbers in a reused Float64Array, strings in one buffer. */
  private packed(trades: readonly Trade[], framed: boolean): Buffer {
    const n = trades.length;
    if (this.nums.length < SLOTS * n) this.nums = new Float64Array(SLOTS * n);
    const nums = this.nums;
    let text = '';
    for (let i = 0; i < n; i++) {
      const t = trades[i];
      const k = SLOTS * i;
      nums[k] = this.assetIndex(t.symbol);
      nums[k + 1] = t.tradeTime;
      nums[k + 2] = t.tradeId;
      nums[k + 3] = t.maker ? 1 : 0;
      nums[k + 4] = t.price.length;
      nums[k + 5] = t.qty.length;
      nums[k + 6] = t.type.length;
      text += t.price + t.qty + t.type;
    }
    const numBytes = Buffer.from(nums.buffer, nums.byteOffset, SLOTS * 8 * n);
    return nativeCall(() => this.native.encodePacked(numBytes, Buffer.from(text, 'latin1'), framed));
  }

  /** Header payload holding the current encoder state. */
  header(): Buffer {
    return this.native.header();
  }

  /** v2 gap-notice payload; null in v1 (no such frame). */
  gap(g: GapEvent): Buffer | null {
    const a = this.assetIndex(g.symbol);
    return nativeCall(() => this.native.gap(a, g.lastId, g.nextId, g.reason === 'reconnect' ? 1 : 0));
  }

  /** v2 heartbeat payload carrying `nowMs`; null in v1. */
  heartbeat(nowMs: number): Buffer | null {
    return nativeCall(() => this.native.heartbeat(nowMs));
  }

  /** v2 snapshot payload (state of every asset). v1 has none: throws `E_NOT_IN_V1`. */
  snapshot(): Buffer {
    return nativeCall(() => this.native.snapshot());
  }

  /** A late joiner starting now. */
  join(): Joiner {
    return new JoinerImpl(this.native.join());
  }

  /** v1: each asset's last trade time, to build a `Decoder` from `header()` mid-stream; null in v2. */
  stateV1(): V1State | null {
    const t = this.native.stateV1();
    return t ? { lastTimes: t } : null;
  }
}

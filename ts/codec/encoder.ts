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

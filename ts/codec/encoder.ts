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
  /** Makes this encoder and these arrays the session `ingestBound()` runs (see `Encoder.ingest`). */
  bindIngest(pool: Uint8Array, ends: Uint32Array, lastIds: Float64Array, blocked: Uint8Array, io: Float64Array, out: Uint8Array): void;
  header(): Buffer;
  snapshot(): Buffer;
  heartbeat(nowMs: number): Buffer | null;
  gap(asset: number, lastId: number, nextId: number, reason: number): Buffer | null;
  stateV1(): number[] | null;
  join(): NativeJoiner;
}

export interface EncoderBinding {
  NativeEncoder: new (wire: string, assets: AssetSpec[], refTime: number) => NativeEncoder;
  /** Runs the bound ingest session on its io request: `layout.ran`, or `layout.notBound` (bind, call again). */
  ingestBound(): number;
  /** The io array's slots, `ingestBound`'s results, the frame slack and the stop names. */
  ingestLayout(): IngestLayout;
}

/** crates/perp-signal-node/src/ingest_session.rs `IngestLayout`. */
interface IngestLayout {
  request: number;
  from: number;
  count: number;
  outAt: number;
  consumed: number;
  stop: number;
  outLen: number;
  meta: number;
  ran: number;
  notBound: number;
  /** Room kept per frame beyond its JSON length (core `ingest::FRAME_SLACK`). */
  frameSlack: number;
  stops: string[];
}

const native = binding<EncoderBinding>();

/** f64 slots per trade of a packed batch (crates/perp-signal-node/src/codec.rs `SLOTS`). */
const SLOTS = 7;
/** A character that Latin-1 packing would not carry as itself. */
const NON_ASCII = /[^\x00-\x7f]/;

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

/** `ingest`'s stop names, by native stop code (0 = end, then core `ingest::Irregular::code`). */
const INGEST_STOPS = ['end', 'not-a-trade', 'unknown-symbol', 'blocked', 'first-trade', 'out-of-sequence', 'encode-failed'] as const;

/**
 * The ingest session's protocol (crates/perp-signal-node/src/ingest_session.rs), as the addon
 * defines it: slots of its io array (request flag, first frame, frame count, output offset in;
 * frames consumed, stop code, output bytes out; then 3 f64 per consumed frame from `meta`), the
 * call's results and the frame slack. An addon whose stop names differ from the ones this file
 * types was built from other sources: refuse it here rather than misread its stops.
 */
const LAYOUT = ingestLayout();

function ingestLayout(): IngestLayout {
  const layout = typeof native.ingestLayout === 'function' ? native.ingestLayout() : undefined;
  const stops = layout?.stops.join(', ') ?? 'none';
  if (layout === undefined || stops !== INGEST_STOPS.join(', ')) {
    throw new PerpSignalError(
      'E_INTERNAL',
      `the native addon's ingest stops (${stops}) are not this package's (${INGEST_STOPS.join(', ')}): ` +
        'the addon was built from other sources; rebuild it (npm run build:native) or reinstall the package',
    );
  }
  return layout;
}
const IO_REQUEST = LAYOUT.request;
const IO_FROM = LAYOUT.from;
const IO_COUNT = LAYOUT.count;
const IO_OUT_AT = LAYOUT.outAt;
const IO_CONSUMED = LAYOUT.consumed;
const IO_STOP = LAYOUT.stop;
const IO_OUT_LEN = LAYOUT.outLen;
const IO_META = LAYOUT.meta;
const INGEST_RAN = LAYOUT.ran;
const FRAME_SLACK = LAYOUT.frameSlack;
/**
 * `ingest` writes its frames into this much memory, one run after the other, and takes a new
 * slab when the next run might not fit: bytes once handed out are never written again, so a
 * transport may keep them (a socket's write queue, a turn's coalesced writes) as long as it likes.
 */
const OUT_SLAB = 1 << 20;


/** Why `ingest` stopped: 'end' (every frame consumed), else what makes the next frame irregular. */
export type IngestStop = (typeof INGEST_STOPS)[number];

/** What `Encoder.ingest` gives: the frames of the regular run and what the caller needs per trade. */
export interface IngestRun {
  /**
   * u32-LE framed messages, one per consumed frame, in order: a view of the encoder's output slab
   * that is never written again, so it may be kept (e.g. in a socket's write queue) for good.
   */
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
  /** The ingest session's request and results (IO_* slots), its output slab and what was bound. */
  private io = new Float64Array(IO_META + 3 * 256);
  private out = Buffer.allocUnsafeSlow(OUT_SLAB);
  private outAt = 0;
  private bound?: { pool: Uint8Array; ends: Uint32Array; lastIds: Float64Array; blocked: Uint8Array; io: Float64Array; out: Buffer; lengths: number[] };
  private metaViews: Float64Array[] = [];

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
   * handles with its full rules before calling again after it (it may also stop early with stop
   * 'end' when its output room ran out: call again from `from + consumed`). Throws
   * (`E_INVALID_ARG`) only for inconsistent arguments, then changes nothing.
   *
   * At low rates a call holds one frame, so what it costs is mostly the call: the native side is
   * one call without arguments on arrays bound once (`bindIngest`, again when one of them is
   * replaced), and the frames go into a reused output slab.
   */
  ingest(frames: RawFrames, from: number, state: IngestState): IngestRun {
    const n = frames.count - from;
    if (this.io.length < IO_META + 3 * n) this.growIo(n);
    const ends = frames.ends;
    const bytes = n > 0 && frames.count <= ends.length ? ends[frames.count - 1] - (from > 0 ? ends[from - 1] : 0) : 0;
    const need = bytes + FRAME_SLACK * Math.max(n, 0);
    if (this.out.length - this.outAt < need) {
      this.out = Buffer.allocUnsafeSlow(Math.max(OUT_SLAB, need));
      this.outAt = 0;
    }
    const io = this.io;
    io[IO_FROM] = from;
    io[IO_COUNT] = frames.count;
    io[IO_OUT_AT] = this.outAt;
    io[IO_REQUEST] = 1;
    try {
      // Another session may have been bound since (another encoder): then nothing ran, and the
      // request is still ours to run once this one is bound again.
      if (!this.isBound(frames, state) || native.ingestBound() !== INGEST_RAN) {
        this.bindIngest(frames, state);
        if (native.ingestBound() !== INGEST_RAN) throw new PerpSignalError('E_INTERNAL', 'ingest session did not run after binding');
      }
    } catch (e) {
      io[IO_REQUEST] = 0;
      if (e instanceof PerpSignalError) throw e;
      // ingestBound has no env to throw our codes with: its errors are all inconsistent requests.
      throw new PerpSignalError('E_INVALID_ARG', `Encoder.ingest: ${(e as Error).message}`);
    }
    const consumed = io[IO_CONSUMED];
    const len = io[IO_OUT_LEN];
    const framed = this.out.subarray(this.outAt, this.outAt + len);
    this.outAt += len;
    return { framed, consumed, stop: INGEST_STOPS[io[IO_STOP]] ?? 'end', meta: this.metaView(consumed) };
  }

  /**
   * The arrays bound are these very ones, with the lengths they had: a typed array whose buffer was
   * detached (transferred to a worker) reads as length 0, and one over a resizable buffer may
   * change length; either must be bound again, never used through the address bound before.
   */
  private isBound(frames: RawFrames, state: IngestState): boolean {
    const b = this.bound;
    return (
      b !== undefined &&
      b.pool === frames.pool &&
      b.ends === frames.ends &&
      b.lastIds === state.lastIds &&
      b.blocked === state.blocked &&
      b.io === this.io &&
      b.out === this.out &&
      b.lengths[0] === b.pool.byteLength &&
      b.lengths[1] === b.ends.byteLength &&
      b.lengths[2] === b.lastIds.byteLength &&
      b.lengths[3] === b.blocked.byteLength &&
      b.lengths[4] === b.io.byteLength &&
      b.lengths[5] === b.out.byteLength
    );
  }

  private bindIngest(frames: RawFrames, state: IngestState): void {
    this.bound = undefined;
    const { pool, ends } = frames;
    const { lastIds, blocked } = state;
    const { io, out } = this;
    // The native run reads and writes these arrays as memory no one else touches while it runs
    // (ingest_session.rs, SAFETY): true of a thread's own buffers, not of shared ones.
    for (const [name, a] of [['pool', pool], ['ends', ends], ['lastIds', lastIds], ['blocked', blocked]] as const) {
      if (Object.prototype.toString.call(a.buffer) === '[object SharedArrayBuffer]') {
        throw new PerpSignalError(
          'E_INVALID_ARG',
          `Encoder.ingest: ${name} is a view of a SharedArrayBuffer, which another thread may write while the encoder reads it; copy it into an ArrayBuffer of this thread`,
        );
      }
    }
    nativeCall(() => this.native.bindIngest(pool, ends, lastIds, blocked, io, out));
    const lengths = [pool.byteLength, ends.byteLength, lastIds.byteLength, blocked.byteLength, io.byteLength, out.byteLength];
    this.bound = { pool, ends, lastIds, blocked, io, out, lengths };
  }

  private growIo(n: number): void {
    this.io = new Float64Array(IO_META + 3 * Math.max(n, 2 * ((this.io.length - IO_META) / 3)));
    this.metaViews = [];
  }

  /** `io`'s meta slots of `n` trades: one view per size, made once. */
  private metaView(n: number): Float64Array {
    let v = this.metaViews[n];
    if (v === undefined) {
      v = this.io.subarray(IO_META, IO_META + 3 * n);
      if (n < 1024) this.metaViews[n] = v;
    }
    return v;
  }

  /**
   * Packs trades for one native call: numbers in a reused Float64Array, strings in one buffer.
   * Latin-1 (one byte per character, so the lengths are the strings' own) while the text is ASCII,
   * as every exchange string is; otherwise UTF-8 with byte lengths, so that the encoder sees the
   * characters as they are and refuses them (Latin-1 keeps only each character's low byte, which
   * made U+0131 a '1').
   */
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
    const ascii = !NON_ASCII.test(text);
    if (!ascii) {
      for (let i = 0; i < n; i++) {
        const t = trades[i];
        nums[SLOTS * i + 4] = Buffer.byteLength(t.price);
        nums[SLOTS * i + 5] = Buffer.byteLength(t.qty);
        nums[SLOTS * i + 6] = Buffer.byteLength(t.type);
      }
    }
    const numBytes = Buffer.from(nums.buffer, nums.byteOffset, SLOTS * 8 * n);
    return nativeCall(() => this.native.encodePacked(numBytes, Buffer.from(text, ascii ? 'latin1' : 'utf8'), framed));
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

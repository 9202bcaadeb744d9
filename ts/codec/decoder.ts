import { nativeCall } from '../errors';
import { binding } from '../native';
import { COLUMN_COUNT, columnsFromNative, type NativeColumnEvents, type TradeColumns } from './columns';
import type { AssetState, DecodedMessage, WireVersion } from './types';

interface NativeDecoder {
  readonly wire: WireVersion;
  readonly symbols: string[];
  /** Writes `nums[0]` = record count, then 8 f64 per record; returns the text fields, each ended by '\n'. */
  decodePacked(data: Uint8Array, framed: boolean, nums: Float64Array): string;
  /** Writes `cols[0]` = trade count, then each column for that many rows; returns the other messages. */
  decodeColumns(data: Uint8Array, cols: Float64Array): NativeColumnEvents | null;
}

export interface DecoderBinding {
  NativeDecoder: new (header: Uint8Array, lastTimes?: number[] | null, checkStream?: boolean | null) => NativeDecoder;
}

const native = binding<DecoderBinding>();

// Record kinds and layout of crates/perp-signal-node/src/codec.rs (`Out::rec`).
const K_TRADE = 0;
const K_HEARTBEAT = 1;
const K_GAP = 2;
const K_SNAPSHOT = 3;
const K_LOST = 4;
const REC = 8;
/** Records one frame can give: a stream loss, an asset loss, its message. */
const MAX_RECORDS_PER_FRAME = 3;
/** The smallest frame: a 4-byte length and a 1-byte payload. */
const MIN_FRAME = 5;

export interface DecoderOptions {
  /** v1: each asset's last trade time (ms), to resume mid-stream from `Encoder.header()` and `Encoder.stateV1()`. */
  lastTimes?: readonly number[];
  /**
   * v2: report stream-sequence gaps (default true). A consumer that receives only some symbols'
   * frames (e.g. one NATS subject) sets false and relies on the per-asset sequence.
   */
  checkStreamSeq?: boolean;
}

/** Decodes frames after a header; detects v1/v2 from the header's magic/version byte. */
export class Decoder {
  readonly wire: WireVersion;
  readonly symbols: readonly string[];
  private readonly native: NativeDecoder;
  /** Reused output of the native call (grown for larger batches). */
  private nums = new Float64Array(1 + REC * MAX_RECORDS_PER_FRAME * 256);
  /** Reused output of `decodeColumns` (each batch copies out its own rows). */
  private cols = new Float64Array(1 + COLUMN_COUNT * 256);
  /** v2 trade types by code, as the native decoder announces them. */
  private readonly types: string[] = [];

  /** `header`: a header payload, or (v2) a snapshot payload to start from. */
  constructor(header: Uint8Array, opts: DecoderOptions = {}) {
    this.native = nativeCall(
      () => new native.NativeDecoder(header, opts.lastTimes ? [...opts.lastTimes] : null, opts.checkStreamSeq ?? true),
    );
    this.wire = this.native.wire;
    this.symbols = Object.freeze(this.native.symbols);
  }

  /**
   * One frame payload. A frame that reveals lost frames gives a `lost` message, with the frame's
   * own message nested in it when that could still be decoded exactly.
   */
  decode(payload: Uint8Array): DecodedMessage {
    const nums = this.nums;
    const text = nativeCall(() => this.native.decodePacked(payload, false, nums));
    return this.build(nums, text, true)[0];
  }

  /**
   * A u32-LE framed batch: every message in order (`lost` ones flattened before the message of
   * the same frame). On a malformed frame it throws, naming the frame; the frames before it have
   * been applied to the state.
   */
  decodeFrames(framed: Uint8Array): DecodedMessage[] {
    const need = 2 + REC * MAX_RECORDS_PER_FRAME * Math.ceil(framed.length / MIN_FRAME);
    if (this.nums.length < need) this.nums = new Float64Array(need);
    const nums = this.nums;
    const text = nativeCall(() => this.native.decodePacked(framed, true, nums));
    return this.build(nums, text, false);
  }

  /**
   * A u32-LE framed batch as columns: the cheap path for high rates (one native call, no object or
   * string per trade; see `TradeColumns`). Same messages as `decodeFrames`, exactly; on a malformed
   * frame it throws the same way.
   */
  decodeColumns(framed: Uint8Array): TradeColumns {
    const need = 1 + COLUMN_COUNT * Math.ceil(framed.length / MIN_FRAME);
    if (this.cols.length < need) this.cols = new Float64Array(need);
    const cols = this.cols;
    const extra = nativeCall(() => this.native.decodeColumns(framed, cols));
    return columnsFromNative(this.wire, this.symbols, this.types, cols, extra);
  }

  private build(nums: Float64Array, joined: string, nest: boolean): DecodedMessage[] {
    const text = joined.length > 0 ? joined.split('\n') : [];
    const end = 1 + REC * nums[0];
    const out: DecodedMessage[] = [];
    const v2 = this.wire === 'v2';
    const syms = this.symbols;
    let t = 0;
    // Lost records whose frame's message follows them (nest mode only).
    let parent: { message?: DecodedMessage } | null = null;
    for (let r = 1; r < end; r += REC) {
      const kind = nums[r];
      const asset = nums[r + 1];
      let m: DecodedMessage;
      if (kind === K_TRADE) {
        if (v2) {
          m = {
            kind: 'trade',
            symbol: syms[asset],
            asset,
            time: nums[r + 2],
            price: text[t],
            qty: text[t + 1],
            maker: nums[r + 6] === 1,
            tradeId: nums[r + 3],
            type: text[t + 2],
            seq: nums[r + 4],
            assetSeq: nums[r + 5],
          };
          t += 3;
        } else {
          m = {
            kind: 'trade',
            symbol: syms[asset],
            asset,
            time: nums[r + 2],
            price: text[t],
            qty: text[t + 1],
            maker: nums[r + 6] === 1,
          };
          t += 2;
        }
      } else if (kind === K_HEARTBEAT) {
        m = { kind: 'heartbeat', time: nums[r + 2], seq: nums[r + 4] };
      } else if (kind === K_GAP) {
        m = {
          kind: 'gap',
          symbol: syms[asset],
          asset,
          lastId: nums[r + 2],
          nextId: nums[r + 3],
          reason: nums[r + 5] === 1 ? 'reconnect' : 'jump',
          seq: nums[r + 4],
        };
      } else if (kind === K_SNAPSHOT) {
        m = { kind: 'snapshot', seq: nums[r + 4], assets: JSON.parse(text[t]) as AssetState[] };
        t += 1;
      } else if (kind === K_LOST) {
        m =
          nums[r + 3] === 1
            ? { kind: 'lost', scope: 'asset', missing: nums[r + 2], symbol: syms[asset], asset }
            : { kind: 'lost', scope: 'stream', missing: nums[r + 2] };
      } else {
        throw new Error(`perp-signal: unknown native record kind ${kind}`);
      }
      if (nest && parent) {
        parent.message = m;
      } else {
        out.push(m);
      }
      parent = nest && kind === K_LOST && nums[r + 6] === 1 ? (m as { message?: DecodedMessage }) : null;
    }
    return out;
  }
}

/**
 * Columnar decoded batches: the cheap, exact path for high-rate consumers. One native call per
 * batch fills numeric columns (prices and quantities as exact integer mantissas with their scale);
 * decimal strings and objects are made only for the rows a consumer asks about.
 */
import type {
  AssetState,
  DecodedGap,
  DecodedHeartbeat,
  DecodedLost,
  DecodedMessage,
  DecodedSnapshot,
  DecodedTrade,
  WireVersion,
} from './types';

// Column order of crates/perp-signal-core/src/columns.rs (`col`).
const C_ASSET = 0;
const C_TRADE_ID = 1;
const C_TIME = 2;
const C_PRICE = 3;
const C_PRICE_SCALE = 4;
const C_QTY = 5;
const C_QTY_SCALE = 6;
const C_MAKER = 7;
const C_SEQ = 8;
const C_ASSET_SEQ = 9;
const C_TYPE = 10;
/** Columns per trade. */
export const COLUMN_COUNT = 11;

// Event kinds and layout of `columns::Event`.
const E_SLOTS = 8;
const E_HEARTBEAT = 1;
const E_GAP = 2;
const E_SNAPSHOT = 3;
const E_LOST = 4;
const E_WIDE = 5;
const E_TYPE = 6;

/** A gap, loss, heartbeat or snapshot, placed before trade row `row` of its batch. */
export type ColumnEvent = (DecodedGap | DecodedHeartbeat | DecodedSnapshot | DecodedLost) & {
  /** Index of the first trade of the batch that came after this message (`length` if none). */
  row: number;
};

/** What the native `decodeColumns` returns besides the columns (null when nothing happened). */
export interface NativeColumnEvents {
  nums: number[];
  text: string;
}

/**
 * The trades of one batch (e.g. one socket read) as columns, `length` rows each. The arrays are
 * this batch's own (not reused), so a consumer may keep them. All numbers are exact: ids, times and
 * mantissas are integers below 2^53 (a mantissa that is not is NaN, and `priceString`/`qtyString`
 * still give its exact decimal).
 */
export class TradeColumns {
  readonly kind = 'columns' as const;
  /** Asset index into `symbols`. */
  readonly asset: Float64Array;
  /** v2 trade id; -1 in v1. */
  readonly tradeId: Float64Array;
  /** Trade time `T`, ms. */
  readonly time: Float64Array;
  /** Price = price[i] x 10^-priceScale[i]. */
  readonly price: Float64Array;
  readonly priceScale: Float64Array;
  /** Quantity = qty[i] x 10^-qtyScale[i]. */
  readonly qty: Float64Array;
  readonly qtyScale: Float64Array;
  /** 1 when the buyer was the maker (the aggressor sold), else 0. */
  readonly maker: Float64Array;
  /** v2 stream sequence number of the trade's frame; -1 in v1. */
  readonly seq: Float64Array;
  /** v2 asset sequence number; -1 in v1. */
  readonly assetSeq: Float64Array;
  /** v2: index into `types` (the trade's `X`); -1 in v1. */
  readonly typeCode: Float64Array;

  constructor(
    readonly wire: WireVersion,
    readonly symbols: readonly string[],
    /** Trade types by code, shared with the decoder (it grows as new types appear). */
    readonly types: readonly string[],
    readonly length: number,
    data: Float64Array,
    /** Gaps, losses, heartbeats and snapshots of this batch, in stream order. */
    readonly events: readonly ColumnEvent[],
    /** Exact decimal strings of mantissas that are NaN in the columns, by `row * 2 + (qty ? 1 : 0)`. */
    private readonly wide?: ReadonlyMap<number, string>,
  ) {
    const col = (c: number): Float64Array => data.subarray(c * length, (c + 1) * length);
    this.asset = col(C_ASSET);
    this.tradeId = col(C_TRADE_ID);
    this.time = col(C_TIME);
    this.price = col(C_PRICE);
    this.priceScale = col(C_PRICE_SCALE);
    this.qty = col(C_QTY);
    this.qtyScale = col(C_QTY_SCALE);
    this.maker = col(C_MAKER);
    this.seq = col(C_SEQ);
    this.assetSeq = col(C_ASSET_SEQ);
    this.typeCode = col(C_TYPE);
  }

  symbol(i: number): string {
    return this.symbols[this.asset[i]];
  }

  /** The price as the object path gives it (v2: at the asset's scale; v1: trailing zeros trimmed). */
  priceString(i: number): string {
    const m = this.price[i];
    return m === m ? decimalString(m, this.priceScale[i], this.wire === 'v1') : (this.wide?.get(i * 2) ?? 'NaN');
  }

  qtyString(i: number): string {
    const m = this.qty[i];
    return m === m ? decimalString(m, this.qtyScale[i], this.wire === 'v1') : (this.wide?.get(i * 2 + 1) ?? 'NaN');
  }

  /** Row `i` as the object the regular decoder yields (equal to it field for field). */
  trade(i: number): DecodedTrade {
    const t: DecodedTrade = {
      kind: 'trade',
      symbol: this.symbol(i),
      asset: this.asset[i],
      time: this.time[i],
      price: this.priceString(i),
      qty: this.qtyString(i),
      maker: this.maker[i] === 1,
    };
    if (this.wire === 'v2') {
      t.tradeId = this.tradeId[i];
      t.type = this.types[this.typeCode[i]];
      t.seq = this.seq[i];
      t.assetSeq = this.assetSeq[i];
    }
    return t;
  }

  /** Every message of the batch as objects, in stream order (the regular decoder's output). */
  messages(): DecodedMessage[] {
    const out: DecodedMessage[] = [];
    let e = 0;
    for (let i = 0; i <= this.length; i++) {
      for (; e < this.events.length && this.events[e].row === i; e++) {
        const { row: _row, ...m } = this.events[e];
        out.push(m as DecodedMessage);
      }
      if (i < this.length) out.push(this.trade(i));
    }
    return out;
  }
}

/** `m` x 10^-scale as a decimal string; `trim` drops trailing fraction zeros and a bare point. */
export function decimalString(m: number, scale: number, trim: boolean): string {
  const neg = m < 0;
  let digits = String(neg ? -m : m);
  if (scale > 0) {
    if (digits.length <= scale) digits = '0'.repeat(scale - digits.length + 1) + digits;
    const cut = digits.length - scale;
    let frac = digits.slice(cut);
    if (trim) {
      let end = frac.length;
      while (end > 0 && frac.charCodeAt(end - 1) === 48) end--;
      frac = frac.slice(0, end);
    }
    digits = frac.length > 0 ? `${digits.slice(0, cut)}.${frac}` : digits.slice(0, cut);
  }
  return neg ? `-${digits}` : digits;
}

/**
 * Builds a batch from the native output: `nums[0]` = trade count, then the columns; `extra` the
 * events (types first seen are added to `types`, which the decoder keeps).
 */
export function columnsFromNative(
  wire: WireVersion,
  symbols: readonly string[],
  types: string[],
  nums: Float64Array,
  extra: NativeColumnEvents | null | undefined,
): TradeColumns {
  const n = nums[0];
  const data = nums.slice(1, 1 + n * COLUMN_COUNT);
  if (!extra) return new TradeColumns(wire, symbols, types, n, data, []);
  const text = extra.text.length > 0 ? extra.text.split('\n') : [];
  let t = 0;
  const events: ColumnEvent[] = [];
  let wide: Map<number, string> | undefined;
  const ev = extra.nums;
  for (let r = 0; r < ev.length; r += E_SLOTS) {
    const kind = ev[r];
    const row = ev[r + 1];
    const f = (k: number): number => ev[r + 2 + k];
    switch (kind) {
      case E_GAP:
        events.push({
          kind: 'gap',
          symbol: symbols[f(0)],
          asset: f(0),
          lastId: f(1),
          nextId: f(2),
          reason: f(4) === 1 ? 'reconnect' : 'jump',
          seq: f(3),
          row,
        });
        break;
      case E_HEARTBEAT:
        events.push({ kind: 'heartbeat', time: f(0), seq: f(1), row });
        break;
      case E_SNAPSHOT:
        events.push({ kind: 'snapshot', seq: f(0), assets: JSON.parse(text[t++]) as AssetState[], row });
        break;
      case E_LOST:
        events.push(
          f(0) >= 0
            ? { kind: 'lost', scope: 'asset', missing: f(1), symbol: symbols[f(0)], asset: f(0), row }
            : { kind: 'lost', scope: 'stream', missing: f(1), row },
        );
        break;
      case E_WIDE:
        (wide ??= new Map()).set(row * 2 + (f(0) === C_QTY ? 1 : 0), text[t++]);
        break;
      case E_TYPE:
        types[f(0)] = text[t++];
        break;
      default:
        throw new Error(`perp-signal: unknown native column event kind ${kind}`);
    }
  }
  return new TradeColumns(wire, symbols, types, n, data, events, wide);
}

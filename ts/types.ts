/**
 * The data that flows through the pipeline: source -> codec -> transports. Every module agrees on
 * these shapes; none of them knows where the others get or send their data.
 */

/** One trade, as the exchange sent it. Decimal values are the exact strings received. */
export interface Trade {
  /** Upper-case symbol, e.g. `BTCUSDT`. */
  symbol: string;
  /** `T`: trade time, ms since the Unix epoch. */
  tradeTime: number;
  /** `E`: event time, ms since the Unix epoch. */
  eventTime: number;
  /** `t`: trade id, consecutive per symbol (below 2^53). */
  tradeId: number;
  /** `p`, exactly as received, e.g. `"61800.30"`. */
  price: string;
  /** `q`, exactly as received, e.g. `"0.006"`. */
  qty: string;
  /** `m`: the buyer is the maker. */
  maker: boolean;
  /** `X`: trade type, e.g. `MARKET`. */
  type: string;
  /** Local receive time: wall clock, ns since the Unix epoch. */
  recvWallNs: bigint;
  /** Local receive time: monotonic clock (`process.hrtime.bigint()`), ns. */
  recvMonoNs: bigint;
}

/** Trades of one symbol went missing between `lastId` and `nextId` (both exclusive of the gap). */
export interface GapEvent {
  symbol: string;
  /** Last trade id seen before the gap. */
  lastId: number;
  /** First trade id seen after the gap. */
  nextId: number;
  /** Why: an id jump within a connection, or a reconnect window. */
  reason: 'jump' | 'reconnect';
}

/** Reference data of a symbol, from exchangeInfo and recent trades. */
export interface SymbolInfo {
  symbol: string;
  /** PRICE_FILTER tickSize, as the exchange wrote it, e.g. `"0.10"`. */
  tickSize: string;
  /** LOT_SIZE stepSize, e.g. `"0.001"`. */
  stepSize: string;
  /** Mean price of recent trades (decimal string), or undefined until the first live trade. */
  refPrice?: string;
  /** Mean quantity of recent trades (decimal string). */
  refQty?: string;
}

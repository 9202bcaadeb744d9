/** Public shapes of the codec. */

export type WireVersion = 'v1' | 'v2';

/** One asset of an encoder, in wire order (its index is its position). */
export interface AssetSpec {
  symbol: string;
  /** Reference price (decimal string), e.g. the mean of recent trades. */
  refPrice: string;
  /** Reference quantity (decimal string). */
  refQty: string;
  /** Price decimals (from tickSize). v2: else inferred from refPrice (at most 8, grows in band). */
  priceScale?: number;
  /** Quantity decimals (from stepSize). v2: else inferred from refQty. */
  qtyScale?: number;
}

/** State of one v2 asset, as a snapshot carries it. */
export interface AssetState {
  symbol: string;
  /** Last trade time, ms. */
  time: number;
  /** Last price, exact decimal at `priceScale`. */
  price: string;
  tradeId: number;
  /** Sequence number of the asset's next trade or gap frame. */
  assetSeq: number;
  priceScale: number;
  qtyScale: number;
  /** `X` of the last trade. */
  type: string;
}

export interface DecodedTrade {
  kind: 'trade';
  symbol: string;
  asset: number;
  /** Trade time `T`, ms. */
  time: number;
  /** v2: exactly the asset's scale (the exchange's string); v1: the 1e-5 value, trailing zeros trimmed. */
  price: string;
  qty: string;
  maker: boolean;
  /** v2 only. */
  tradeId?: number;
  /** v2 only: `X`. */
  type?: string;
  /** v2 only: stream sequence number of this frame. */
  seq?: number;
  /** v2 only: the asset's sequence number of this frame. */
  assetSeq?: number;
}

export interface DecodedGap {
  kind: 'gap';
  symbol: string;
  asset: number;
  lastId: number;
  nextId: number;
  reason: 'jump' | 'reconnect';
  seq?: number;
}

export interface DecodedHeartbeat {
  kind: 'heartbeat';
  /** Server time, ms. */
  time: number;
  seq?: number;
}

export interface DecodedSnapshot {
  kind: 'snapshot';
  seq: number;
  assets: AssetState[];
}

/**
 * v2: frames went missing before this one. `scope: 'stream'`: `missing` frames of the stream (exact
 * when the frame is a control frame, modulo 256 for a trade frame). `scope: 'asset'`: frames of
 * `symbol` went missing; its deltas cannot be applied, so its trades are withheld (reported as
 * `lost` with `missing: 0`) until the next snapshot. `message` is this frame's own message when it
 * could still be decoded exactly.
 */
export interface DecodedLost {
  kind: 'lost';
  scope: 'stream' | 'asset';
  missing: number;
  symbol?: string;
  asset?: number;
  message?: DecodedMessage;
}

export type DecodedMessage = DecodedTrade | DecodedGap | DecodedHeartbeat | DecodedSnapshot | DecodedLost;

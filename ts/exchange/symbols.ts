/** The local exchange's instruments, with exchangeInfo entries shaped like Binance's. */
export interface SymbolSpec {
  symbol: string;
  baseAsset: string;
  /** PRICE_FILTER tickSize as Binance writes it, e.g. "0.10". */
  tickSize: string;
  /** LOT_SIZE stepSize, e.g. "0.001" or "1". */
  stepSize: string;
  /** Decimals of prices on the stream (Binance's pricePrecision). */
  pricePrecision: number;
  quantityPrecision: number;
  /** Where the random walk starts (on the tick grid). */
  startPrice: string;
  /** Typical trade size in steps (sizes are drawn around it, heavy tailed). */
  typicalSteps: number;
  status?: string;
  contractType?: string;
  quoteAsset?: string;
}

/** Trading perpetuals the generator runs by default, including a small-tick one (1000SATSUSDT). */
export const DEFAULT_SYMBOLS: SymbolSpec[] = [
  { symbol: 'BTCUSDT', baseAsset: 'BTC', tickSize: '0.10', stepSize: '0.001', pricePrecision: 2, quantityPrecision: 3, startPrice: '61800.30', typicalSteps: 20 },
  { symbol: 'ETHUSDT', baseAsset: 'ETH', tickSize: '0.01', stepSize: '0.001', pricePrecision: 2, quantityPrecision: 3, startPrice: '2650.41', typicalSteps: 200 },
  { symbol: 'SOLUSDT', baseAsset: 'SOL', tickSize: '0.0100', stepSize: '1', pricePrecision: 4, quantityPrecision: 0, startPrice: '145.2300', typicalSteps: 8 },
  { symbol: '1000SATSUSDT', baseAsset: '1000SATS', tickSize: '0.0000001', stepSize: '1', pricePrecision: 7, quantityPrecision: 0, startPrice: '0.0003401', typicalSteps: 200_000 },
];

/** Listed symbols our start-up checks refuse (settling, a quarterly, a USDC-quoted perpetual). */
export const NON_TRADING_SYMBOLS: SymbolSpec[] = [
  { symbol: 'FTTUSDT', baseAsset: 'FTT', tickSize: '0.0010', stepSize: '0.1', pricePrecision: 4, quantityPrecision: 1, startPrice: '1.0000', typicalSteps: 100, status: 'SETTLING' },
  { symbol: 'BTCUSDT_260327', baseAsset: 'BTC', tickSize: '0.10', stepSize: '0.001', pricePrecision: 1, quantityPrecision: 3, startPrice: '62000.0', typicalSteps: 20, contractType: 'CURRENT_QUARTER' },
  { symbol: 'BTCUSDC', baseAsset: 'BTC', tickSize: '0.10', stepSize: '0.001', pricePrecision: 1, quantityPrecision: 3, startPrice: '61800.0', typicalSteps: 20, quoteAsset: 'USDC' },
];

/** A spec for a symbol only known by name (e.g. from a replay file): BTC-like grid. */
export function genericSpec(symbol: string): SymbolSpec {
  return { symbol, baseAsset: symbol.replace(/USDT$/, ''), tickSize: '0.01', stepSize: '0.001', pricePrecision: 2, quantityPrecision: 3, startPrice: '100.00', typicalSteps: 100 };
}

export function exchangeInfoEntry(s: SymbolSpec): object {
  const maxPrice = s.pricePrecision >= 6 ? '1.0000000' : '4529764';
  return {
    symbol: s.symbol,
    pair: s.symbol.replace(/_\d+$/, ''),
    contractType: s.contractType ?? 'PERPETUAL',
    deliveryDate: 4133404800000,
    onboardDate: 1569398400000,
    status: s.status ?? 'TRADING',
    maintMarginPercent: '2.5000',
    requiredMarginPercent: '5.0000',
    baseAsset: s.baseAsset,
    quoteAsset: s.quoteAsset ?? 'USDT',
    marginAsset: s.quoteAsset ?? 'USDT',
    pricePrecision: s.pricePrecision,
    quantityPrecision: s.quantityPrecision,
    baseAssetPrecision: 8,
    quotePrecision: 8,
    underlyingType: 'COIN',
    underlyingSubType: [],
    triggerProtect: '0.0500',
    liquidationFee: '0.012500',
    marketTakeBound: '0.05',
    maxMoveOrderLimit: 10000,
    filters: [
      { filterType: 'PRICE_FILTER', minPrice: s.tickSize, maxPrice, tickSize: s.tickSize },
      { filterType: 'LOT_SIZE', stepSize: s.stepSize, maxQty: '1000000000', minQty: s.stepSize },
      { filterType: 'MARKET_LOT_SIZE', stepSize: s.stepSize, maxQty: '120000000', minQty: s.stepSize },
      { filterType: 'MAX_NUM_ORDERS', limit: 200 },
      { filterType: 'MAX_NUM_ALGO_ORDERS', limit: 10 },
      { filterType: 'MIN_NOTIONAL', notional: '5' },
      { filterType: 'PERCENT_PRICE', multiplierUp: '1.0500', multiplierDown: '0.9500', multiplierDecimal: '4' },
    ],
    orderTypes: ['LIMIT', 'MARKET', 'STOP', 'STOP_MARKET', 'TAKE_PROFIT', 'TAKE_PROFIT_MARKET', 'TRAILING_STOP_MARKET'],
    timeInForce: ['GTC', 'IOC', 'FOK', 'GTX', 'GTD'],
  };
}

export function exchangeInfoBody(specs: SymbolSpec[]): object {
  return {
    timezone: 'UTC',
    serverTime: Date.now(),
    futuresType: 'U_MARGINED',
    rateLimits: [
      { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: 2400 },
      { rateLimitType: 'ORDERS', interval: 'MINUTE', intervalNum: 1, limit: 1200 },
      { rateLimitType: 'ORDERS', interval: 'SECOND', intervalNum: 10, limit: 300 },
    ],
    exchangeFilters: [],
    assets: [
      { asset: 'USDT', marginAvailable: true, autoAssetExchange: '-10000' },
      { asset: 'USDC', marginAvailable: true, autoAssetExchange: '-10000' },
    ],
    symbols: specs.map(exchangeInfoEntry),
  };
}

/** The Binance USD-M trade source: live streams, REST reference data, reconnects, gap detection. */
export { BinanceSource } from './binance';
export type { SourceOptions, SourceStats, SymbolStats, ReconnectEvent, SourceWarning, BackfillEvent, SourceEvents } from './binance';
export { resolveEndpoints, endpointOptions, apiKeyOption, resolveApiKey, DEFAULT_WS_URL, DEFAULT_REST_URL } from './endpoints';
export type { Endpoints } from './endpoints';
export { RestClient } from './rest';
export type { RestOptions, ExchangeInfo, ExchangeSymbol, RestTrade } from './rest';
export { validateSymbols, fetchReferences, symbolFromAsset } from './symbols';
export { Backoff } from './backoff';
export { parseFrame } from './parse';
export type { ParsedFrame } from './parse';
export { meanDecimal, toScaled, fromScaled, decimalsOf } from './decimal';

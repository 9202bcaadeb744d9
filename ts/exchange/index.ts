/** The local Binance-compatible exchange (demo, tests, replay). The forwarder never imports it. */
export { LocalExchange } from './server';
export type { ExchangeOptions, ExchangeAddress } from './server';
export { Faults, GARBAGE_FRAMES } from './faults';
export type { FaultOptions } from './faults';
export { DEFAULT_SYMBOLS, NON_TRADING_SYMBOLS } from './symbols';
export type { SymbolSpec } from './symbols';
export { SymbolWalk, seededRandom } from './generator';
export type { TradePayload } from './generator';
export { loadReplay } from './replay';
export type { ReplayFrame } from './replay';

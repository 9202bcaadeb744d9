/** Start-up reference data: validates symbols against exchangeInfo and fetches reference prices. */
import { PerpSignalError } from '../errors';
import type { SymbolInfo } from '../types';
import { noopLogger, type Logger } from '../observe/logger';
import { decimalsOf, meanDecimal } from './decimal';
import type { ExchangeInfo, ExchangeSymbol, RestClient } from './rest';

/** "btc" -> "BTCUSDT", "ethusdt" -> "ETHUSDT": lets users name assets or symbols. */
export function symbolFromAsset(asset: string): string {
  const s = asset.trim().toUpperCase();
  return s.endsWith('USDT') ? s : `${s}USDT`;
}

function filterValue(sym: ExchangeSymbol, type: string, key: string): string | undefined {
  const f = sym.filters.find((x) => x.filterType === type);
  const v = f?.[key];
  return typeof v === 'string' ? v : undefined;
}

/**
 * Checks every symbol is a USDT-quoted perpetual that is trading, and reads tickSize/stepSize.
 * Throws E_UNKNOWN_SYMBOL or E_SYMBOL_NOT_TRADING naming the first bad symbol.
 */
export function validateSymbols(info: ExchangeInfo, symbols: readonly string[]): SymbolInfo[] {
  const bySymbol = new Map(info.symbols.map((s) => [s.symbol, s]));
  return symbols.map((name) => {
    const s = bySymbol.get(name);
    if (!s) {
      throw new PerpSignalError(
        'E_UNKNOWN_SYMBOL',
        `unknown symbol ${name}: the exchange's exchangeInfo does not list it (check the spelling, e.g. BTCUSDT)`,
      );
    }
    if (s.contractType !== 'PERPETUAL' || s.quoteAsset !== 'USDT') {
      throw new PerpSignalError(
        'E_SYMBOL_NOT_TRADING',
        `symbol ${name} is not a USDT perpetual (contractType ${s.contractType}, quote ${s.quoteAsset}); only USDT-M perpetuals are supported`,
      );
    }
    if (s.status !== 'TRADING') {
      throw new PerpSignalError('E_SYMBOL_NOT_TRADING', `symbol ${name} is not trading (status ${s.status}); remove it`);
    }
    const tickSize = filterValue(s, 'PRICE_FILTER', 'tickSize');
    const stepSize = filterValue(s, 'LOT_SIZE', 'stepSize');
    if (!tickSize || !stepSize) {
      throw new PerpSignalError('E_BAD_EXCHANGE_INFO', `exchangeInfo for ${name} lacks PRICE_FILTER tickSize or LOT_SIZE stepSize`);
    }
    return { symbol: name, tickSize, stepSize };
  });
}

export interface ReferenceOptions {
  /** Recent trades averaged per symbol (default 100; weight 5 per request up to 100... 1000). */
  tradeLimit?: number;
  /** Requests in flight at once (default 4), to stay well inside the 2400/min weight limit. */
  concurrency?: number;
  /** Stop starting new requests while the used weight is above this (default 1800 of 2400). */
  weightCeiling?: number;
  logger?: Logger;
  /** Called for each symbol whose reference could not be fetched. */
  onWarning?: (symbol: string, message: string) => void;
}

/**
 * Fills refPrice/refQty with the mean of each symbol's recent trades. A symbol whose trades cannot
 * be fetched keeps them undefined (it starts from its first live trade) and gets a warning.
 */
export async function fetchReferences(rest: RestClient, infos: SymbolInfo[], opts: ReferenceOptions = {}): Promise<void> {
  const logger = opts.logger ?? noopLogger;
  const limit = opts.tradeLimit ?? 100;
  const ceiling = opts.weightCeiling ?? 1800;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < infos.length) {
      const info = infos[next++];
      // Pace on the server's own weight count so many symbols never trip the IP limit.
      for (let i = 0; i < 60 && rest.usedWeight > ceiling; i++) await new Promise((r) => setTimeout(r, 1000));
      try {
        const trades = await rest.trades(info.symbol, limit);
        if (trades.length === 0) throw new Error('no recent trades');
        info.refPrice = meanDecimal(
          trades.map((t) => t.price),
          Math.max(decimalsOf(info.tickSize), ...trades.map((t) => decimalsOf(t.price))),
        );
        info.refQty = meanDecimal(trades.map((t) => t.qty));
      } catch (e) {
        const msg = `no reference price for ${info.symbol} (${(e as Error).message}); it starts from its first live trade`;
        // Reported once: through the owner's warning when it listens, else logged here.
        if (opts.onWarning) opts.onWarning(info.symbol, msg);
        else logger.warn(msg, { symbol: info.symbol });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, infos.length) }, worker));
}

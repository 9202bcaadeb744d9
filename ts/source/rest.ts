/**
 * Binance USD-M REST: exchangeInfo, recent and historical trades. Retries 429/418/5xx and network
 * failures with backoff, honouring `Retry-After`; other 4xx are errors at once (retrying a bad
 * symbol cannot help).
 */
import { PerpSignalError } from '../errors';
import { noopLogger, type Logger } from '../observe/logger';
import { Backoff, sleep } from './backoff';

export interface RestOptions {
  restUrl: string;
  /** Sent as X-MBX-APIKEY; needed only for historicalTrades (gap backfill). */
  apiKey?: string;
  /** Attempts per request including the first (default 4). */
  attempts?: number;
  /** Backoff between attempts. */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Per-request timeout, ms (default 10 000). */
  timeoutMs?: number;
  logger?: Logger;
}

/** Binance's exchangeInfo, the parts we read. */
export interface ExchangeInfo {
  symbols: ExchangeSymbol[];
  rateLimits?: { rateLimitType: string; interval: string; intervalNum: number; limit: number }[];
}

export interface ExchangeSymbol {
  symbol: string;
  status: string;
  contractType: string;
  quoteAsset: string;
  baseAsset: string;
  pricePrecision?: number;
  quantityPrecision?: number;
  filters: { filterType: string; [k: string]: unknown }[];
}

/** One trade from /fapi/v1/trades or /fapi/v1/historicalTrades. */
export interface RestTrade {
  id: number;
  price: string;
  qty: string;
  quoteQty: string;
  time: number;
  isBuyerMaker: boolean;
}

export class RestClient {
  private readonly base: string;
  private readonly logger: Logger;
  /** Last X-MBX-USED-WEIGHT-1M seen, for pacing concurrent callers. */
  usedWeight = 0;

  constructor(private readonly opts: RestOptions) {
    this.base = opts.restUrl.replace(/\/+$/, '');
    this.logger = opts.logger ?? noopLogger;
  }

  exchangeInfo(): Promise<ExchangeInfo> {
    return this.get<ExchangeInfo>('/fapi/v1/exchangeInfo', {});
  }

  /** Recent trades, oldest first (limit 1..1000, Binance default 500). */
  trades(symbol: string, limit = 500): Promise<RestTrade[]> {
    return this.get<RestTrade[]>('/fapi/v1/trades', { symbol, limit: String(limit) });
  }

  /** Trades from `fromId` on, oldest first; needs the API key. */
  historicalTrades(symbol: string, fromId: number, limit = 1000): Promise<RestTrade[]> {
    if (!this.opts.apiKey) {
      throw new PerpSignalError('E_NO_API_KEY', 'historicalTrades needs an API key (--api-key or env PERP_SIGNAL_API_KEY)');
    }
    return this.get<RestTrade[]>('/fapi/v1/historicalTrades', { symbol, limit: String(limit), fromId: String(fromId) });
  }

  private async get<T>(path: string, query: Record<string, string>): Promise<T> {
    const url = `${this.base}${path}${Object.keys(query).length ? '?' + new URLSearchParams(query).toString() : ''}`;
    const attempts = Math.max(1, this.opts.attempts ?? 4);
    const backoff = new Backoff({ baseMs: this.opts.backoffBaseMs ?? 200, maxMs: this.opts.backoffMaxMs ?? 10_000 });
    let lastError: PerpSignalError | undefined;
    for (let i = 0; i < attempts; i++) {
      let waitMs = backoff.next();
      try {
        const res = await fetch(url, {
          headers: this.opts.apiKey ? { 'X-MBX-APIKEY': this.opts.apiKey } : {},
          signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
        });
        const weight = Number(res.headers.get('x-mbx-used-weight-1m'));
        if (Number.isFinite(weight) && weight > 0) this.usedWeight = weight;
        const text = await res.text();
        if (res.ok) {
          try {
            return JSON.parse(text) as T;
          } catch {
            throw new PerpSignalError('E_REST_BAD_BODY', `GET ${url}: response is not JSON: ${text.slice(0, 200)}`);
          }
        }
        const body = parseError(text);
        const err = new PerpSignalError(
          res.status === 429 ? 'E_RATE_LIMITED' : res.status === 418 ? 'E_IP_BANNED' : 'E_REST',
          `GET ${url}: HTTP ${res.status}${body ? ` code ${body.code}: ${body.msg}` : `: ${text.slice(0, 200)}`}`,
        );
        Object.assign(err, { status: res.status, binanceCode: body?.code });
        if (!(res.status === 429 || res.status === 418 || res.status >= 500)) throw err;
        lastError = err;
        const retryAfter = Number(res.headers.get('retry-after'));
        if (Number.isFinite(retryAfter) && retryAfter > 0) waitMs = Math.max(waitMs, retryAfter * 1000);
      } catch (e) {
        if (e instanceof PerpSignalError && e.code !== 'E_RATE_LIMITED' && e.code !== 'E_IP_BANNED' && !isServerError(e)) {
          throw e;
        }
        lastError =
          e instanceof PerpSignalError ? e : new PerpSignalError('E_REST_NETWORK', `GET ${url}: ${(e as Error).message}`);
      }
      if (i + 1 < attempts) {
        this.logger.warn('rest request failed, retrying', { url, attempt: i + 1, waitMs, error: lastError?.message });
        await sleep(waitMs);
      }
    }
    throw lastError ?? new PerpSignalError('E_REST', `GET ${url} failed`);
  }
}

function isServerError(e: PerpSignalError): boolean {
  const status = (e as { status?: number }).status;
  return typeof status === 'number' && status >= 500;
}

function parseError(text: string): { code: number; msg: string } | undefined {
  try {
    const j = JSON.parse(text) as { code?: unknown; msg?: unknown };
    if (typeof j.code === 'number' && typeof j.msg === 'string') return { code: j.code, msg: j.msg };
  } catch {
    // not JSON: the caller shows the raw text
  }
  return undefined;
}

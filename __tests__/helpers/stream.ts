/** A deterministic synthetic trade stream and exact comparison helpers for transport tests. */
import { seededRandom } from '../../ts/exchange/generator';
import type { Trade } from '../../ts/types';

/** Seeded PRNG (the local exchange's): the same seed gives the same data and join points. */
export const rng = seededRandom;

export interface AssetModel {
  symbol: string;
  /** Price in integer ticks, and decimals of a tick / of a quantity step. */
  price: number;
  priceDecimals: number;
  qtyDecimals: number;
}

export const ASSETS: AssetModel[] = [
  { symbol: 'BTCUSDT', price: 6_180_030, priceDecimals: 2, qtyDecimals: 3 },
  { symbol: 'ETHUSDT', price: 265_012, priceDecimals: 2, qtyDecimals: 3 },
  { symbol: 'SOLUSDT', price: 1_523_400, priceDecimals: 4, qtyDecimals: 0 },
];

export function decimal(units: number, decimals: number): string {
  const neg = units < 0;
  const s = String(Math.abs(units)).padStart(decimals + 1, '0');
  const out = decimals === 0 ? s : `${s.slice(0, s.length - decimals)}.${s.slice(s.length - decimals)}`;
  return neg ? `-${out}` : out;
}

/** Codec asset specs (reference values at the stream's start). */
export function assetSpecs(models: AssetModel[] = ASSETS): { symbol: string; refPrice: string; refQty: string; priceScale: number; qtyScale: number }[] {
  return models.map((a) => ({
    symbol: a.symbol,
    refPrice: decimal(a.price, a.priceDecimals),
    refQty: decimal(10 ** a.qtyDecimals, a.qtyDecimals),
    priceScale: a.priceDecimals,
    qtyScale: a.qtyDecimals,
  }));
}

/** A trade stream that goes on across calls: random-walk prices, consecutive ids per symbol, rising times. */
export class TradeGen {
  private readonly r: () => number;
  private readonly price: number[];
  private readonly ids: number[];

  constructor(
    seed = 1,
    private readonly models: AssetModel[] = ASSETS,
    private time = 1_723_100_000_000,
  ) {
    this.r = rng(seed);
    this.price = models.map((a) => a.price);
    this.ids = models.map((_, i) => 5_266_583_935 + i * 1_000_000_000);
  }

  next(n: number): Trade[] {
    const { r, price, ids, models } = this;
    const out: Trade[] = new Array(n);
    for (let k = 0; k < n; k++) {
      const i = Math.floor(r() * models.length);
      const a = models[i];
      this.time += r() < 0.7 ? 0 : Math.floor(r() * 40);
      price[i] = Math.max(1, price[i] + Math.round((r() - 0.5) * 20));
      const qtyUnits = 1 + Math.floor(r() * r() * 5000);
      const wallNs = BigInt(this.time) * 1_000_000n;
      out[k] = {
        symbol: a.symbol,
        tradeTime: this.time,
        eventTime: this.time + 1,
        tradeId: ids[i]++,
        price: decimal(price[i], a.priceDecimals),
        qty: decimal(qtyUnits, a.qtyDecimals),
        maker: r() < 0.5,
        type: 'MARKET',
        recvWallNs: wallNs,
        recvMonoNs: wallNs,
      };
    }
    return out;
  }
}

/** `n` trades of a fresh `TradeGen`. */
export function makeTrades(n: number, seed = 1, models: AssetModel[] = ASSETS, startMs = 1_723_100_000_000): Trade[] {
  return new TradeGen(seed, models, startMs).next(n);
}

/** A decimal string in canonical form: no leading or trailing zeros that carry no value. */
/** One trade with the given id and price (time = base + id ms, qty 0.006), for tests of single trades. */
export function oneTrade(symbol: string, tradeId: number, price: string, baseMs = 1_723_100_000_000): Trade {
  return {
    symbol,
    tradeTime: baseMs + tradeId,
    eventTime: baseMs + tradeId,
    tradeId,
    price,
    qty: '0.006',
    maker: false,
    type: 'MARKET',
    recvWallNs: 0n,
    recvMonoNs: 0n,
  };
}

export function canon(s: string): string {
  let t = s.trim();
  const neg = t.startsWith('-');
  if (neg) t = t.slice(1);
  if (t.includes('.')) t = t.replace(/0+$/, '').replace(/\.$/, '');
  t = t.replace(/^0+(?=\d)/, '');
  return neg && t !== '0' ? `-${t}` : t;
}

/** What a consumer must see of a source trade, in canonical form. */
export function expectedView(t: Trade): { symbol: string; time: number; price: string; qty: string; maker: boolean } {
  return { symbol: t.symbol, time: t.tradeTime, price: canon(t.price), qty: canon(t.qty), maker: t.maker };
}

export function decodedView(m: { symbol: string; time: number; price: string; qty: string; maker: boolean }): ReturnType<typeof expectedView> {
  return { symbol: m.symbol, time: m.time, price: canon(m.price), qty: canon(m.qty), maker: m.maker };
}

interface TradeLike {
  kind?: string;
  symbol: string;
  time: number;
  price: string;
  qty: string;
  maker: boolean;
  tradeId?: number;
}

/**
 * Throws, naming the first difference, unless `got` (decoded) is exactly `want` (sent) from
 * `offset` on. A loop, not toEqual: jest's deep equality takes seconds on 10^5 objects.
 */
export function expectSameTrades(got: readonly object[], want: readonly Trade[], what = 'decoded stream'): void {
  if (got.length !== want.length) throw new Error(`${what}: ${got.length} trades decoded, ${want.length} sent`);
  for (let k = 0; k < want.length; k++) {
    const g = got[k] as TradeLike;
    const w = want[k];
    if (g.kind !== undefined && g.kind !== 'trade') throw new Error(`${what}: message ${k} is a ${g.kind}, not a trade`);
    const same =
      g.symbol === w.symbol &&
      g.time === w.tradeTime &&
      canon(g.price) === canon(w.price) &&
      canon(g.qty) === canon(w.qty) &&
      g.maker === w.maker &&
      (g.tradeId === undefined || g.tradeId === w.tradeId);
    if (!same) {
      throw new Error(`${what}: trade ${k} decoded as ${JSON.stringify(g)}, sent ${JSON.stringify(expectedView(w))} id ${w.tradeId}`);
    }
  }
}

/** Resolves when `cond()` holds; rejects after `timeoutMs` with `what` in the message. */
export async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

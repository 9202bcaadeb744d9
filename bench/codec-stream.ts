/**
 * A synthetic, realistic BTC/ETH/SOL USD-M trade stream (deterministic): tick-sized random-walk
 * prices written at tick precision, heavy-tailed quantities on the step grid, bursty times,
 * consecutive trade ids. Used by the codec benchmark and tests for bytes/trade figures.
 */
import type { Trade } from '../ts/types';
import type { AssetSpec } from '../ts/codec/types';

interface Market {
  symbol: string;
  /** Price in ticks. */
  ticks: number;
  priceDecimals: number;
  tick: number;
  qtyDecimals: number;
  /** Median quantity, in steps. */
  medianSteps: number;
  share: number;
  id: number;
}

export const SYNTHETIC_ASSETS: AssetSpec[] = [
  { symbol: 'BTCUSDT', refPrice: '60000.00', refQty: '0.010', priceScale: 2, qtyScale: 3 },
  { symbol: 'ETHUSDT', refPrice: '2600.00', refQty: '0.100', priceScale: 2, qtyScale: 3 },
  { symbol: 'SOLUSDT', refPrice: '150.00', refQty: '5', priceScale: 2, qtyScale: 0 },
];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fixed(units: number, decimals: number): string {
  const s = String(units).padStart(decimals + 1, '0');
  return decimals === 0 ? s : `${s.slice(0, -decimals)}.${s.slice(-decimals)}`;
}

export function syntheticTrades(n: number, seed = 1, startMs = 1723161256322): Trade[] {
  const r = rng(seed);
  const markets: Market[] = [
    { symbol: 'BTCUSDT', ticks: 600000, priceDecimals: 2, tick: 10, qtyDecimals: 3, medianSteps: 10, share: 0.5, id: 5266583935 },
    { symbol: 'ETHUSDT', ticks: 260000, priceDecimals: 2, tick: 1, qtyDecimals: 3, medianSteps: 100, share: 0.35, id: 4100000000 },
    { symbol: 'SOLUSDT', ticks: 15000, priceDecimals: 2, tick: 1, qtyDecimals: 0, medianSteps: 5, share: 0.15, id: 1500000000 },
  ];
  let t = startMs;
  const out: Trade[] = [];
  for (let i = 0; i < n; i++) {
    const u = r();
    const m = u < markets[0].share ? markets[0] : u < markets[0].share + markets[1].share ? markets[1] : markets[2];
    // Bursts: most trades share a millisecond with the previous one or follow within a few ms.
    const g = r();
    t += g < 0.55 ? 0 : g < 0.9 ? Math.floor(r() * 20) : Math.floor(r() * 400);
    const step = r();
    m.ticks += step < 0.6 ? 0 : step < 0.95 ? (r() < 0.5 ? -1 : 1) : Math.round((r() - 0.5) * 20);
    const steps = Math.max(1, Math.round(m.medianSteps * Math.exp((r() - 0.5) * 5)));
    m.id += 1;
    out.push({
      symbol: m.symbol,
      tradeTime: t,
      eventTime: t,
      tradeId: m.id,
      price: fixed(m.ticks * m.tick, m.priceDecimals),
      qty: fixed(steps, m.qtyDecimals),
      maker: r() < 0.5,
      type: 'MARKET',
      recvWallNs: BigInt(t) * 1000000n,
      recvMonoNs: BigInt(i),
    });
  }
  return out;
}

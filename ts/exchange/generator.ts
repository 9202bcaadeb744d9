/**
 * Synthetic trades: a random walk on each symbol's tick grid with heavy-tailed sizes and bursts.
 * Prices and sizes are integers of ticks/steps turned into decimal strings, so no float artefact
 * can appear.
 */
import { decimalsOf, fromScaled, toScaled } from '../source/decimal';
import type { SymbolSpec } from './symbols';

/** A trade payload exactly as Binance sends it on `<symbol>@trade`. */
export interface TradePayload {
  e: 'trade';
  E: number;
  T: number;
  s: string;
  t: number;
  p: string;
  q: string;
  X: string;
  m: boolean;
}

/** Small fast PRNG (mulberry32): seeded runs repeat exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class SymbolWalk {
  private ticks: bigint;
  private readonly tick: bigint;
  private readonly step: bigint;
  private readonly priceScale: number;
  private readonly qtyScale: number;
  nextId: number;

  constructor(
    readonly spec: SymbolSpec,
    private readonly random: () => number,
    firstId = 1_000_000_000,
  ) {
    this.priceScale = Math.max(spec.pricePrecision, decimalsOf(spec.tickSize));
    this.qtyScale = Math.max(spec.quantityPrecision, decimalsOf(spec.stepSize));
    this.tick = toScaled(spec.tickSize, this.priceScale);
    this.step = toScaled(spec.stepSize, this.qtyScale);
    this.ticks = toScaled(spec.startPrice, this.priceScale) / this.tick;
    this.nextId = firstId;
  }

  /** One trade at time `ms`; a burst repeats the time and often the price of the previous trade. */
  next(ms: number): TradePayload {
    const r = this.random();
    if (r < 0.2) this.ticks -= 1n;
    else if (r < 0.4) this.ticks += 1n;
    else if (r < 0.42) this.ticks -= BigInt(2 + Math.floor(this.random() * 5));
    else if (r < 0.44) this.ticks += BigInt(2 + Math.floor(this.random() * 5));
    if (this.ticks < 1n) this.ticks = 1n;
    // Pareto-like sizes: mostly small, now and then a block many times the typical size.
    const u = Math.max(1e-6, this.random());
    const steps = Math.max(1, Math.min(1e9, Math.round((this.spec.typicalSteps * 0.3) / Math.pow(u, 0.8))));
    return {
      e: 'trade',
      E: ms,
      T: ms,
      s: this.spec.symbol,
      t: this.nextId++,
      p: fromScaled(this.ticks * this.tick, this.priceScale),
      q: fromScaled(BigInt(steps) * this.step, this.qtyScale),
      X: 'MARKET',
      m: this.random() < 0.5,
    };
  }
}

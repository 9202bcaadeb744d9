/**
 * Log-linear latency histogram (HdrHistogram's idea, small): 2^k ranges split into 32 linear
 * sub-buckets, so any recorded value is reported within ~3% and recording is O(1) with no
 * allocation, cheap enough for the per-trade path.
 */
const SUB_BITS = 5;
const SUB = 1 << SUB_BITS;
const RANGES = 48; // covers 0 .. 2^53 ns
const TWO_32 = 2 ** 32;
const POW2 = Array.from({ length: 64 }, (_, i) => 2 ** i);

export class LatencyHistogram {
  private counts = new Float64Array(RANGES * SUB);
  private total = 0;
  private maxSeen = 0;

  record(value: number): void {
    const v = value < 0 ? 0 : Math.floor(value);
    this.counts[LatencyHistogram.index(v)] += 1;
    this.total += 1;
    if (v > this.maxSeen) this.maxSeen = v;
  }

  get count(): number {
    return this.total;
  }

  get max(): number {
    return this.maxSeen;
  }

  /** Value at quantile q (0..1): upper edge of the bucket holding it, NaN when empty. */
  quantile(q: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(LatencyHistogram.upper(i), this.maxSeen);
    }
    return this.maxSeen;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.maxSeen = 0;
  }

  private static index(v: number): number {
    if (v < SUB) return v;
    // Integer bit tricks only (no log2/pow): this runs twice per trade in the stats.
    if (v < TWO_32) {
      const exp = 31 - Math.clz32(v) - SUB_BITS;
      return (exp + 1) * SUB + ((v >>> exp) - SUB);
    }
    const exp = 63 - Math.clz32(Math.floor(v / TWO_32)) - SUB_BITS;
    const sub = Math.floor(v / POW2[exp]) - SUB;
    return Math.min((exp + 1) * SUB + sub, RANGES * SUB - 1);
  }

  private static upper(i: number): number {
    if (i < SUB) return i;
    const exp = Math.floor(i / SUB) - 1;
    const sub = (i % SUB) + SUB;
    return (sub + 1) * 2 ** exp - 1;
  }
}

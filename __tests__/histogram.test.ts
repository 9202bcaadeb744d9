import { LatencyHistogram } from '../ts/observe/histogram';

describe('LatencyHistogram', () => {
  it('reports quantiles within its bucket precision', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 100000; i++) h.record(i * 10);
    const within = (got: number, want: number): void => {
      expect(got).toBeGreaterThanOrEqual(want * 0.999);
      expect(got).toBeLessThanOrEqual(want * 1.04);
    };
    within(h.quantile(0.5), 500000);
    within(h.quantile(0.99), 990000);
    within(h.quantile(0.999), 999000);
    expect(h.quantile(1)).toBe(1000000);
    expect(h.count).toBe(100000);
  });

  it('is exact for small values and empty when reset', () => {
    const h = new LatencyHistogram();
    [0, 1, 2, 3, 31].forEach((v) => h.record(v));
    expect(h.quantile(0.2)).toBe(0);
    expect(h.quantile(1)).toBe(31);
    h.reset();
    expect(Number.isNaN(h.quantile(0.5))).toBe(true);
  });

  it('places values near powers of two in the right bucket', () => {
    for (const v of [2 ** 40 - 1, 2 ** 40, 2 ** 49 - 1, 2 ** 33 + 5]) {
      const h = new LatencyHistogram();
      h.record(v);
      h.record(0);
      expect(h.quantile(1)).toBe(v);
      const h2 = new LatencyHistogram();
      h2.record(v);
      h2.record(v * 4);
      expect(h2.quantile(0.5)).toBeGreaterThanOrEqual(v);
      expect(h2.quantile(0.5)).toBeLessThanOrEqual(v * 1.04);
    }
  });
});

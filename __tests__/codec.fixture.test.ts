/**
 * The real BTCUSDT capture end to end, v1 and v2, plus late joiners at random points, checked
 * against the truth and (v1) against the independent spec-following oracle decoder.
 */
import { Decoder, Encoder, splitFrames } from '../ts/index';
import type { DecodedMessage, DecodedTrade, WireVersion } from '../ts/index';
import type { Trade } from '../ts/types';
import { syntheticTrades, SYNTHETIC_ASSETS } from '../bench/codec-stream';
import { fixtureTrades } from './oracle/fixture';
import { OriginalV1Encoder, V1Oracle, oracleFrames } from './oracle/v1-oracle';

const trades = fixtureTrades();
const BTC = [{ symbol: 'BTCUSDT', refPrice: '61800.30', refQty: '0.006', priceScale: 2, qtyScale: 3 }];
const canon = (s: string): string => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
/** Exact decimal string -> integer units of 1e-5 (the fixture has at most 3 decimals). */
const units5 = (s: string): bigint => {
  const [i, f = ''] = s.split('.');
  return BigInt(i + f.padEnd(5, '0'));
};

function onlyTrades(ms: DecodedMessage[]): DecodedTrade[] {
  for (const m of ms) expect(m.kind).toBe('trade');
  return ms as DecodedTrade[];
}

function batches<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

describe('real capture (21,313 BTCUSDT trades)', () => {
  it('is the capture the README describes', () => {
    expect(trades.length).toBe(21313);
    expect(trades[0].tradeId).toBe(5266583935);
    expect(trades[trades.length - 1].tradeId).toBe(5266605247);
  });

  it('v2 is lossless on every trade: exchange strings, time, m, id, X', () => {
    const e = new Encoder({ wire: 'v2', assets: BTC, refTime: trades[0].tradeTime });
    const d = new Decoder(e.header());
    const got = onlyTrades(batches(trades, 997).flatMap((b) => d.decodeFrames(e.encodeBatch(b))));
    expect(got.length).toBe(trades.length);
    const bad = got.filter((m, i) => {
      const t = trades[i];
      const a = [m.price, m.qty, m.time, m.maker, m.tradeId, m.type, m.seq, m.assetSeq];
      const b = [t.price, t.qty, t.tradeTime, t.maker, t.tradeId, t.type, i, i];
      return a.some((x, k) => x !== b[k]);
    });
    expect(bad).toEqual([]);
  });

  it('v1 batch and single-trade paths give the same bytes, and decode exactly', () => {
    const a = new Encoder({ wire: 'v1', assets: BTC, refTime: trades[0].tradeTime });
    const b = new Encoder({ wire: 'v1', assets: BTC, refTime: trades[0].tradeTime });
    const framed = Buffer.concat(batches(trades, 500).map((x) => a.encodeBatch(x)));
    const singles = Buffer.concat(trades.map((t) => b.encode(t)));
    expect(Buffer.concat(splitFrames(framed)).equals(singles)).toBe(true);
    const d = new Decoder(new Encoder({ wire: 'v1', assets: BTC, refTime: trades[0].tradeTime }).header());
    const got = onlyTrades(d.decodeFrames(framed));
    expect(got.length).toBe(trades.length);
    const bad = got.filter((m, i) => {
      const t = trades[i];
      return m.price !== canon(t.price) || m.qty !== canon(t.qty) || m.time !== t.tradeTime || m.maker !== t.maker;
    });
    expect(bad).toEqual([]);
  });

  it('v1: the spec-following float decoder rounds to the true price on every trade; the original drifted', () => {
    const e = new Encoder({ wire: 'v1', assets: BTC, refTime: trades[0].tradeTime });
    const oracle = new V1Oracle(e.header());
    const orig = new OriginalV1Encoder([61800.3]);
    let origPrice = 61800.3;
    let origWrongPrice = 0;
    let origWrongQty = 0;
    let maxErr = 0;
    let origMaxErr = 0;
    let wrong = 0;
    const frames = oracleFrames(e.encodeBatch(trades));
    expect(frames.length).toBe(trades.length);
    frames.forEach((f, i) => {
      const o = oracle.decode(f);
      const truth = Number(trades[i].price);
      maxErr = Math.max(maxErr, Math.abs(o.price - truth));
      if (BigInt(Math.round(o.price * 1e5)) !== units5(trades[i].price)) wrong++;
      if (BigInt(Math.round(o.qty * 1e5)) !== units5(trades[i].qty)) wrong++;
      const w = orig.encode(0, truth, Number(trades[i].qty));
      origPrice += w.dp / 1e5;
      const err = Math.abs(origPrice - truth);
      origMaxErr = Math.max(origMaxErr, err);
      if (err > 5e-6) origWrongPrice++;
      if (BigInt(w.q) !== units5(trades[i].qty)) origWrongQty++;
    });
    expect(wrong).toBe(0);
    expect(maxErr).toBeLessThan(1e-6);
    // The README's measurements of the original: 99.4% of prices off, by up to 0.0084; 4.4% of qty.
    expect(origWrongPrice / trades.length).toBeGreaterThan(0.99);
    expect(origMaxErr).toBeGreaterThan(0.008);
    expect(origWrongQty / trades.length).toBeGreaterThan(0.04);
  });
});

/** Encodes `stream` in batches; at `joinAt` a joiner starts; checks everything it decodes. */
/** Returns how many batches the joiner had to rewrite. */
function lateJoin(wire: WireVersion, stream: Trade[], joinAt: number, batch: number): number {
  const assets = SYNTHETIC_ASSETS;
  const e = new Encoder({ wire, assets, refTime: stream[0].tradeTime });
  for (const b of batches(stream.slice(0, joinAt), 1000)) e.encodeBatch(b);
  const j = e.join();
  const d = new Decoder(j.header);
  const oracle = wire === 'v1' ? new V1Oracle(j.header) : null;
  let i = joinAt;
  let shared = 0;
  let rewritten = 0;
  const mismatches: unknown[] = [];
  for (const b of batches(stream.slice(joinAt), batch)) {
    const framed = e.encodeBatch(b);
    const adapted = j.adapt(framed);
    if (adapted === framed) shared++;
    else rewritten++;
    const got = onlyTrades(d.decodeFrames(adapted));
    const frames = oracle ? oracleFrames(adapted) : [];
    expect(got.length).toBe(b.length);
    got.forEach((m, k) => {
      const t = stream[i + k];
      const ours = [m.symbol, m.time, canon(m.price), canon(m.qty), m.maker, m.tradeId ?? t.tradeId];
      const want = [t.symbol, t.tradeTime, canon(t.price), canon(t.qty), t.maker, t.tradeId];
      if (ours.some((x, n) => x !== want[n])) mismatches.push({ at: i + k, ours, want });
      if (oracle) {
        const o = oracle.decode(frames[k]);
        if (o.symbol !== t.symbol || o.time !== t.tradeTime || BigInt(Math.round(o.price * 1e5)) !== units5(t.price)) {
          mismatches.push({ at: i + k, oracle: o, want });
        }
      }
    });
    i += b.length;
  }
  expect(mismatches).toEqual([]);
  expect(i).toBe(stream.length);
  expect(j.caughtUp).toBe(true);
  // Once caught up the joiner shares the broadcast Buffer itself.
  expect(shared).toBeGreaterThan(0);
  if (wire === 'v2') expect(rewritten).toBe(0);
  return rewritten;
}

describe('late joiners at random points decode every later trade exactly', () => {
  const stream = syntheticTrades(6000, 11);
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (const wire of ['v1', 'v2'] as const) {
    it(`${wire}: 8 random join points, random batch sizes`, () => {
      let rewritten = 0;
      for (let k = 0; k < 8; k++) rewritten += lateJoin(wire, stream, rand(stream.length - 200), 1 + rand(40));
      // v1 must have rewritten first frames (assets' last times differ at most join points).
      if (wire === 'v1') expect(rewritten).toBeGreaterThan(0);
    });
  }

  it('v1 on the real capture too', () => {
    const e = new Encoder({ wire: 'v1', assets: BTC, refTime: trades[0].tradeTime });
    e.encodeBatch(trades.slice(0, 7777));
    const j = e.join();
    const oracle = new V1Oracle(j.header);
    const frames = oracleFrames(j.adapt(e.encodeBatch(trades.slice(7777))));
    expect(frames.length).toBe(trades.length - 7777);
    const bad = frames.filter((f, k) => {
      const o = oracle.decode(f);
      const t = trades[7777 + k];
      return o.time !== t.tradeTime || BigInt(Math.round(o.price * 1e5)) !== units5(t.price);
    });
    expect(bad).toEqual([]);
  });
});

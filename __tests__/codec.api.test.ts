/** The codec's public API: errors, framing, v2 loss detection and resync, v1 resume. */
import { Decoder, Encoder, FrameReader, frame, isStart, splitFrames, startFrame } from '../ts/index';
import type { DecodedMessage, DecodedTrade } from '../ts/index';
import type { Trade } from '../ts/types';
import { SYNTHETIC_ASSETS, syntheticTrades } from '../bench/codec-stream';
import { V1Oracle } from './oracle/v1-oracle';
import { errorOf } from './support/errors';

const trade = (symbol: string, tradeTime: number, tradeId: number, price: string, qty: string, maker = false): Trade => ({
  symbol, tradeTime, eventTime: tradeTime, tradeId, price, qty, maker, type: 'MARKET', recvWallNs: 0n, recvMonoNs: 0n,
});

describe('encoder errors', () => {
  it('v1 refuses a symbol needing more than 5 decimals, naming it and pointing to v2', () => {
    const sats = [{ symbol: '1000SATSUSDT', refPrice: '0.0003', refQty: '1000' }];
    const e = new Encoder({ wire: 'v1', assets: sats, refTime: 0 });
    const err = errorOf(() => e.encode(trade('1000SATSUSDT', 1, 1, '0.00031234', '60000000000')));
    expect(err.code).toBe('E_V1_PRECISION');
    expect(err.message).toContain('1000SATSUSDT');
    expect(err.message).toMatch(/v2/);
    const byScale = errorOf(() => new Encoder({ wire: 'v1', assets: [{ ...sats[0], priceScale: 8 }], refTime: 0 }));
    expect(byScale.code).toBe('E_V1_PRECISION');
    expect(byScale.message).toContain('1000SATSUSDT');
    // v2 carries it exactly.
    const v2 = new Encoder({ wire: 'v2', assets: [{ ...sats[0], priceScale: 8, qtyScale: 0 }], refTime: 0 });
    const d = new Decoder(v2.header());
    expect(d.decode(v2.encode(trade('1000SATSUSDT', 1, 1, '0.00031234', '60000000000')))).toMatchObject({
      price: '0.00031234',
      qty: '60000000000',
    });
  });

  it('names unknown symbols, bad decimals, bad numbers and wires', () => {
    const e = new Encoder({ wire: 'v2', assets: SYNTHETIC_ASSETS, refTime: 0 });
    expect(errorOf(() => e.encode(trade('DOGEUSDT', 1, 1, '1', '1'))).code).toBe('E_UNKNOWN_SYMBOL');
    expect(errorOf(() => e.encode(trade('BTCUSDT', 1, 1, '6e4', '1'))).code).toBe('E_BAD_DECIMAL');
    expect(errorOf(() => e.encode(trade('BTCUSDT', 1.5, 1, '1', '1'))).code).toBe('E_INVALID_ARG');
    expect(errorOf(() => e.encode(trade('BTCUSDT', 1, -1, '1', '1'))).code).toBe('E_INVALID_ARG');
    expect(errorOf(() => new Encoder({ wire: 'v3' as 'v1', assets: SYNTHETIC_ASSETS })).code).toBe('E_INVALID_ARG');
    expect(errorOf(() => new Encoder({ wire: 'v2', assets: [] })).code).toBe('E_BAD_ASSETS');
    const dup = [SYNTHETIC_ASSETS[0], SYNTHETIC_ASSETS[0]];
    expect(errorOf(() => new Encoder({ wire: 'v1', assets: dup })).code).toBe('E_BAD_ASSETS');
  });

  it('refuses non-ASCII text whose low byte is a digit or letter, instead of reading it as one', () => {
    // U+0131 and U+0661 have the low bytes of '1' and 'a'; U+0141 that of 'A'.
    const e = new Encoder({ wire: 'v2', assets: SYNTHETIC_ASSETS, refTime: 0 });
    const before = e.header();
    for (const [t, code, shown] of [
      [trade('BTCUSDT', 1, 1, '\u0131.00', '1'), 'E_BAD_DECIMAL', '\u0131.00'],
      [trade('BTCUSDT', 1, 1, '61800.30', '0.0\u0131'), 'E_BAD_DECIMAL', '0.0\u0131'],
      [trade('BTCUSDT', 1, 1, '\u0661', '1'), 'E_BAD_DECIMAL', '\u0661'],
      [{ ...trade('BTCUSDT', 1, 1, '61800.30', '1'), type: '\u0141DL' }, 'E_INVALID_ARG', '\u0141DL'],
    ] as const) {
      for (const batch of [[t], [trade('BTCUSDT', 1, 1, '61800.30', '1'), { ...t, tradeId: 2 }]]) {
        const err = errorOf(() => e.encodeBatch(batch));
        expect(err.code).toBe(code);
        expect(err.message).toContain(shown);
        expect(err.message).toMatch(new RegExp(`trade #${batch.length - 1}`));
      }
    }
    expect(e.header().equals(before)).toBe(true);
    // ASCII goes through as before.
    expect(new Decoder(before).decode(e.encode(trade('BTCUSDT', 1, 1, '61800.30', '1')))).toMatchObject({ price: '61800.30' });
  });

  it('encodeBatch is all or nothing and names the failing trade', () => {
    const e = new Encoder({ wire: 'v2', assets: SYNTHETIC_ASSETS, refTime: 0 });
    const good = syntheticTrades(10, 3);
    e.encodeBatch(good.slice(0, 5));
    const before = e.header();
    const bad = [...good.slice(5, 8), { ...good[8], price: '12,5' }, good[9]];
    const err = errorOf(() => e.encodeBatch(bad));
    expect(err.message).toMatch(/trade #3/);
    expect(e.header().equals(before)).toBe(true);
    const d = new Decoder(before);
    const rest = d.decodeFrames(e.encodeBatch(good.slice(5))) as DecodedTrade[];
    expect(rest.map((m) => m.tradeId)).toEqual(good.slice(5).map((t) => t.tradeId));
    expect(e.encodeBatch([]).length).toBe(0);
  });
});

describe('framing', () => {
  it('frames, START, and a streaming reader over arbitrary TCP chunking', () => {
    expect(startFrame().toString('hex')).toBe('050000005354415254');
    expect(isStart(splitFrames(startFrame())[0])).toBe(true);
    const e = new Encoder({ wire: 'v2', assets: SYNTHETIC_ASSETS, refTime: 0 });
    const trades = syntheticTrades(500, 4);
    const stream = Buffer.concat([startFrame(), frame(e.header()), e.encodeBatch(trades)]);
    let seed = 7;
    for (let round = 0; round < 20; round++) {
      const r = new FrameReader();
      const got: Buffer[] = [];
      for (let p = 0; p < stream.length; ) {
        seed = (seed * 48271) % 2147483647;
        const n = 1 + (seed % 97);
        got.push(...r.push(stream.subarray(p, p + n)));
        p += n;
      }
      expect(r.buffered).toBe(0);
      expect(got.length).toBe(2 + trades.length);
      expect(isStart(got[0])).toBe(true);
      const d = new Decoder(got[1]);
      const ids = got.slice(2).map((p) => (d.decode(p) as DecodedTrade).tradeId);
      expect(ids).toEqual(trades.map((t) => t.tradeId));
    }
  });

  it('rejects absurd lengths before allocating, and truncated batches', () => {
    const r = new FrameReader();
    expect(errorOf(() => r.push(Buffer.from('ffffff7f00', 'hex'))).code).toBe('E_FRAME_TOO_LONG');
    const d = new Decoder(new Encoder({ wire: 'v2', assets: SYNTHETIC_ASSETS }).header());
    expect(errorOf(() => d.decodeFrames(Buffer.from('ffffff7f00', 'hex'))).code).toBe('E_FRAME_TOO_LONG');
    const err = errorOf(() => d.decodeFrames(Buffer.from('0700000081', 'hex')));
    expect(err.code).toBe('E_TRUNCATED');
    expect(err.message).toMatch(/frame #0/);
    expect(errorOf(() => splitFrames(Buffer.from('0700000081', 'hex'))).code).toBe('E_TRUNCATED');
  });
});

describe('v2 sequence numbers', () => {
  const trades = syntheticTrades(300, 5);

  function frames(e: Encoder, ts: Trade[]): Buffer[] {
    return ts.map((t) => e.encode(t));
  }

  it('a lost frame is reported, the asset waits for a snapshot, others go on exactly', () => {
    const e = new Encoder({ wire: 'v2', assets: SYNTHETIC_ASSETS, refTime: trades[0].tradeTime });
    const d = new Decoder(e.header());
    const fs = frames(e, trades);
    const dropped = 100;
    const sym = trades[dropped].symbol;
    const out: DecodedMessage[] = [];
    fs.forEach((f, i) => {
      if (i !== dropped) out.push(d.decode(f));
    });
    const firstAfter = out[dropped];
    expect(firstAfter).toMatchObject({ kind: 'lost', scope: 'stream', missing: 1 });
    const lostAsset = out.filter((m) => m.kind === 'lost' && (m.scope === 'asset' || m.message?.kind === 'lost'));
    expect(lostAsset.length).toBeGreaterThan(0);
    // Every later trade of the dropped symbol is withheld (never a wrong price); others decode.
    const decoded = out.flatMap((m) => (m.kind === 'lost' ? (m.message ? [m.message] : []) : [m]));
    const good = decoded.filter((m): m is DecodedTrade => m.kind === 'trade');
    for (const m of good) {
      const t = trades.find((x) => x.symbol === m.symbol && x.tradeId === m.tradeId)!;
      expect([m.price, m.qty, m.time]).toEqual([t.price, t.qty, t.tradeTime]);
    }
    expect(good.some((m) => m.symbol === sym && (m.tradeId ?? 0) > trades[dropped].tradeId)).toBe(false);
    // A snapshot resyncs the asset.
    const snap = d.decode(e.snapshot());
    expect(snap.kind).toBe('snapshot');
    const more = syntheticTrades(50, 6, trades[trades.length - 1].tradeTime).map((t, k) => ({
      ...t,
      tradeId: 9_000_000_000 + k,
    }));
    const after = more.map((t) => d.decode(e.encode(t)));
    expect(after.every((m) => m.kind === 'trade')).toBe(true);
    expect((after as DecodedTrade[]).map((m) => m.price)).toEqual(more.map((t) => t.price));
  });

  it('a consumer of one symbol checks the per-asset sequence only', () => {
    const e = new Encoder({ wire: 'v2', assets: SYNTHETIC_ASSETS, refTime: trades[0].tradeTime });
    const d = new Decoder(e.header(), { checkStreamSeq: false });
    const fs = frames(e, trades);
    const eth = fs.filter((_, i) => trades[i].symbol === 'ETHUSDT');
    const got = eth.map((f) => d.decode(f));
    expect(got.every((m) => m.kind === 'trade')).toBe(true);
    // Losing one ETH frame is still detected by the per-asset number.
    const fresh = new Encoder({ wire: 'v2', assets: SYNTHETIC_ASSETS, refTime: trades[0].tradeTime });
    const d2 = new Decoder(fresh.header(), { checkStreamSeq: false });
    const got2 = eth.filter((_, i) => i !== 3).map((f) => d2.decode(f));
    expect(got2[3]).toMatchObject({ kind: 'lost', scope: 'asset', symbol: 'ETHUSDT', missing: 1 });
  });

  it('a consumer can start from a snapshot alone; heartbeats and gaps carry the sequence', () => {
    const e = new Encoder({ wire: 'v2', assets: SYNTHETIC_ASSETS, refTime: trades[0].tradeTime });
    frames(e, trades.slice(0, 100));
    const d = new Decoder(e.snapshot());
    expect(d.decode(e.heartbeat(42)!)).toEqual({ kind: 'heartbeat', time: 42, seq: 101 });
    expect(d.decode(e.gap({ symbol: 'SOLUSDT', lastId: 7, nextId: 9, reason: 'jump' })!)).toEqual({
      kind: 'gap', symbol: 'SOLUSDT', asset: 2, lastId: 7, nextId: 9, reason: 'jump', seq: 102,
    });
    const t = trade('SOLUSDT', trades[99].tradeTime + 5, 9, '151.23', '4');
    expect(d.decode(e.encode(t))).toMatchObject({ kind: 'trade', tradeId: 9, price: '151.23', qty: '4', seq: 103 });
    // The v2 joiner is the identity.
    const j = e.join();
    const b = e.encodeBatch(trades.slice(100, 110));
    expect(j.adapt(b)).toBe(b);
    expect(j.caughtUp).toBe(true);
  });
});

describe('v1 specifics', () => {
  it('has no control frames', () => {
    const e = new Encoder({ wire: 'v1', assets: SYNTHETIC_ASSETS, refTime: 0 });
    expect(e.heartbeat(1)).toBeNull();
    expect(e.gap({ symbol: 'BTCUSDT', lastId: 1, nextId: 3, reason: 'jump' })).toBeNull();
    expect(errorOf(() => e.snapshot()).code).toBe('E_NOT_IN_V1');
    expect(new Encoder({ wire: 'v2', assets: SYNTHETIC_ASSETS }).stateV1()).toBeNull();
  });

  it('a decoder resumes from header() plus stateV1() last times (the shm ring path)', () => {
    const trades = syntheticTrades(2000, 9);
    const e = new Encoder({ wire: 'v1', assets: SYNTHETIC_ASSETS, refTime: trades[0].tradeTime });
    e.encodeBatch(trades.slice(0, 1234));
    const header = e.header();
    const { lastTimes } = e.stateV1()!;
    expect(lastTimes.length).toBe(3);
    const d = new Decoder(header, { lastTimes });
    const got = d.decodeFrames(e.encodeBatch(trades.slice(1234))) as DecodedTrade[];
    const strip = (s: string) => s.replace(/\.?0+$/, '');
    expect(got.map((m) => [m.time, m.price])).toEqual(trades.slice(1234).map((t) => [t.tradeTime, strip(t.price)]));
    expect(errorOf(() => new Decoder(header, { lastTimes: [1] })).code).toBe('E_INVALID_ARG');
  });

  it('a spec-following v1 decoder fails clearly on a v2 header, and ours on garbage', () => {
    const v2 = new Encoder({ wire: 'v2', assets: SYNTHETIC_ASSETS }).header();
    expect(() => new V1Oracle(v2)).toThrow(/version 80 is not 1/);
    expect(v2.subarray(0, 4).toString('latin1')).toBe('PSW\u0002');
    expect(errorOf(() => new Decoder(Buffer.from('{"e":"trade"}'))).code).toBe('E_BAD_MAGIC');
  });
});

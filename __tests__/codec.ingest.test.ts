/**
 * Encoder.ingest, the forwarder's fast path, through the library API: the same bytes as the JS
 * path (parseFrame + encodeBatch) on the real capture in v1 and v2, last ids advanced in place, a
 * stop before each irregular frame that leaves it to the caller, and typed errors for inconsistent
 * arguments with nothing changed.
 */
import { Encoder } from '../ts/index';
import type { IngestState, RawFrames, WireVersion } from '../ts/index';
import { parseFrame } from '../ts/source/parse';
import type { Trade } from '../ts/types';
import { fixtureFrames } from './oracle/fixture';
import { errorOf } from './support/errors';

const frames = fixtureFrames();
const ASSETS = [
  { symbol: 'BTCUSDT', refPrice: '61800.30', refQty: '0.006', priceScale: 2, qtyScale: 3 },
  { symbol: 'ETHUSDT', refPrice: '2600.00', refQty: '0.100', priceScale: 2, qtyScale: 3 },
];
const REF = 1723161256000;

function pool(texts: readonly string[]): RawFrames {
  const bufs = texts.map((t) => Buffer.from(t));
  const ends = new Uint32Array(bufs.length);
  let at = 0;
  bufs.forEach((b, i) => (ends[i] = at += b.length));
  return { pool: Buffer.concat(bufs), ends, count: bufs.length };
}

function trade(text: string): Trade {
  const p = parseFrame(text, 0n, 0n);
  if (p.kind !== 'trade') throw new Error(`not a trade: ${text}`);
  return p.trade;
}

describe.each<WireVersion>(['v1', 'v2'])('Encoder.ingest %s', (wire) => {
  it('encodes the real capture like encodeBatch, advancing the last ids, in batches of 500', () => {
    const js = new Encoder({ wire, assets: ASSETS, refTime: REF });
    const rs = new Encoder({ wire, assets: ASSETS, refTime: REF });
    const state: IngestState = { lastIds: new Float64Array([NaN, NaN]), blocked: new Uint8Array(2) };
    // The first trade is the caller's (no last id yet): the slow path encodes it.
    const first = trade(frames[0]);
    expect(rs.ingest(pool(frames.slice(0, 1)), 0, state)).toMatchObject({ consumed: 0, stop: 'first-trade' });
    const out: Buffer[] = [rs.encodeBatch([first])];
    state.lastIds[0] = first.tradeId;
    for (let i = 1; i < frames.length; i += 500) {
      const chunk = frames.slice(i, i + 500);
      const run = rs.ingest(pool(chunk), 0, state);
      expect(run).toMatchObject({ consumed: chunk.length, stop: 'end' });
      expect(Array.from(run.meta.subarray(0, 3))).toEqual([0, trade(chunk[0]).tradeId, trade(chunk[0]).tradeTime]);
      out.push(run.framed);
    }
    expect(state.lastIds[0]).toBe(trade(frames[frames.length - 1]).tradeId);
    expect(Number.isNaN(state.lastIds[1])).toBe(true);
    expect(Buffer.concat(out).equals(js.encodeBatch(frames.map(trade)))).toBe(true);
  });
});

describe('Encoder.ingest stops and errors', () => {
  const enc = (): Encoder => new Encoder({ wire: 'v2', assets: ASSETS, refTime: REF });
  const t0 = trade(frames[0]);
  const next = frames.slice(1, 4);

  it('stops before a gap, a duplicate, a blocked asset, garbage and an unknown symbol, and resumes after', () => {
    const cases: [string, string, number[]][] = [
      [frames[5], 'out-of-sequence', [0, 0]],
      [frames[0], 'out-of-sequence', [0, 0]],
      ['not json', 'not-a-trade', [0, 0]],
      ['{"error":{"code":1,"msg":"x"},"id":1}', 'not-a-trade', [0, 0]],
      [frames[4].replace(/BTCUSDT/g, 'XRPUSDT'), 'unknown-symbol', [0, 0]],
      [frames[9].replace(/BTCUSDT/g, 'ETHUSDT'), 'blocked', [0, 1]],
    ];
    for (const [odd, stop, blocked] of cases) {
      const e = enc();
      const state: IngestState = { lastIds: new Float64Array([t0.tradeId, NaN]), blocked: new Uint8Array(blocked) };
      const raw = pool([...next, odd, frames[4]]);
      const run = e.ingest(raw, 0, state);
      expect({ consumed: run.consumed, stop: run.stop }).toEqual({ consumed: 3, stop });
      expect(state.lastIds[0]).toBe(trade(next[2]).tradeId);
      // The caller handles frame 3 its own way; the next call starts after it.
      state.blocked.fill(0);
      const rest = e.ingest(raw, 4, state);
      expect({ consumed: rest.consumed, stop: rest.stop }).toEqual({ consumed: 1, stop: 'end' });
    }
  });

  it('refuses inconsistent arguments with E_INVALID_ARG and changes nothing', () => {
    const e = enc();
    const raw = pool(next);
    const ids = (): IngestState => ({ lastIds: new Float64Array([t0.tradeId, NaN]), blocked: new Uint8Array(2) });
    const bad: [RawFrames, number, IngestState][] = [
      [{ ...raw, ends: Uint32Array.from([10, 5, raw.pool.length]) }, 0, ids()],
      [{ ...raw, ends: Uint32Array.from([10, 20, raw.pool.length + 1]) }, 0, ids()],
      [raw, 4, ids()],
      [raw, 0, { lastIds: new Float64Array(1), blocked: new Uint8Array(2) }],
      [raw, 0, { lastIds: new Float64Array(2), blocked: new Uint8Array(3) }],
    ];
    for (const [f, from, state] of bad) {
      const before = Array.from(state.lastIds);
      expect(errorOf(() => e.ingest(f, from, state))).toMatchObject({ code: 'E_INVALID_ARG' });
      expect(Array.from(state.lastIds)).toEqual(before);
    }
    // The encoder was left as it was: the same bytes as a fresh one.
    const state = ids();
    expect(e.ingest(raw, 0, state).framed.equals(enc().ingest(raw, 0, ids()).framed)).toBe(true);
  });

  it('refuses arrays over a SharedArrayBuffer: another thread could write them while Rust reads them', () => {
    const raw = pool(next);
    const shared = <T extends Uint8Array | Uint32Array | Float64Array>(a: T, make: (b: SharedArrayBuffer) => T): T => {
      const s = make(new SharedArrayBuffer(a.byteLength));
      s.set(a as never);
      return s;
    };
    const ids = (): IngestState => ({ lastIds: new Float64Array([t0.tradeId, NaN]), blocked: new Uint8Array(2) });
    const cases: [RawFrames, IngestState, string][] = [
      [{ ...raw, pool: shared(raw.pool, (b) => new Uint8Array(b)) }, ids(), 'pool'],
      [{ ...raw, ends: shared(raw.ends, (b) => new Uint32Array(b)) }, ids(), 'ends'],
      [raw, { ...ids(), lastIds: shared(ids().lastIds, (b) => new Float64Array(b)) }, 'lastIds'],
      [raw, { ...ids(), blocked: shared(ids().blocked, (b) => new Uint8Array(b)) }, 'blocked'],
    ];
    for (const [f, state, what] of cases) {
      const e = enc();
      const before = Array.from(state.lastIds);
      const err = errorOf(() => e.ingest(f, 0, state));
      expect(err).toMatchObject({ code: 'E_INVALID_ARG' });
      expect((err as Error).message).toContain(what);
      expect(Array.from(state.lastIds)).toEqual(before);
      // Nothing was encoded: the encoder gives the bytes a fresh one gives.
      expect(e.ingest(raw, 0, ids()).framed.equals(enc().ingest(raw, 0, ids()).framed)).toBe(true);
    }
  });
});

/**
 * Encoder.encodeJsonLines (raw frames parsed in Rust, encoded in the same native call) against the
 * JS path the pipeline uses (parseFrame from the source, then encodeBatch): the same bytes for
 * every frame of the real capture, in v1 and v2; malformed input gives a typed error and leaves
 * the encoder as it was.
 */
import { Encoder } from '../ts/index';
import type { WireVersion } from '../ts/index';
import type { Trade } from '../ts/types';
import { parseFrame } from '../ts/source/parse';
import { fixtureFrames } from './oracle/fixture';
import { errorOf } from './support/errors';

const frames = fixtureFrames();
const ASSETS = [
  { symbol: 'BTCUSDT', refPrice: '61800.30', refQty: '0.006', priceScale: 2, qtyScale: 3 },
  { symbol: 'ETHUSDT', refPrice: '2600.00', refQty: '0.100', priceScale: 2, qtyScale: 3 },
];
const REF = 1723161256000;

function jsTrades(texts: readonly string[]): Trade[] {
  return texts.map((f) => {
    const p = parseFrame(f, 0n, 0n);
    if (p.kind !== 'trade') throw new Error(`fixture frame is not a trade: ${f}`);
    return p.trade;
  });
}

const eth = (t: number, p: string, q: string, x = ''): string =>
  `{"stream":"ethusdt@trade","data":{"e":"trade","E":${REF + t},"T":${REF + t},"s":"ETHUSDT","t":${t},"p":"${p}","q":"${q}",${x}"m":true}}`;

describe.each<WireVersion>(['v1', 'v2'])('encodeJsonLines %s', (wire) => {
  it('gives the JS path bytes and ids on all 21,313 fixture frames, batches of 1000', () => {
    expect(frames.length).toBe(21313);
    const js = new Encoder({ wire, assets: ASSETS, refTime: REF });
    const rs = new Encoder({ wire, assets: ASSETS, refTime: REF });
    let mismatched = 0;
    for (let i = 0; i < frames.length; i += 1000) {
      const chunk = frames.slice(i, i + 1000);
      const trades = jsTrades(chunk);
      const want = js.encodeBatch(trades);
      const got = rs.encodeJsonLines(Buffer.from(chunk.join('\n')));
      expect(got.count).toBe(chunk.length);
      if (!got.framed.equals(want)) mismatched += 1;
      trades.forEach((t, k) => {
        if (got.meta[3 * k] !== 0 || got.meta[3 * k + 1] !== t.tradeId || got.meta[3 * k + 2] !== t.tradeTime) mismatched += 1;
      });
    }
    expect(mismatched).toBe(0);
  });

  it('maps symbols to their asset, accepts bare payloads, CRLF and a missing X', () => {
    const texts = [eth(1, '2600.10', '0.5'), frames[0], eth(2, '2600.20', '1.000', '"X":"LIQUIDATION",'), JSON.stringify(JSON.parse(frames[1]).data)];
    const js = new Encoder({ wire, assets: ASSETS, refTime: REF }).encodeBatch(jsTrades(texts));
    const got = new Encoder({ wire, assets: ASSETS, refTime: REF }).encodeJsonLines(Buffer.from(texts.join('\r\n') + '\n'));
    expect(got.framed.equals(js)).toBe(true);
    expect([...got.meta]).toEqual([1, 1, REF + 1, 0, 5266583935, 1723161256322, 1, 2, REF + 2, 0, 5266583936, 1723161256344]);
  });

  it('refuses malformed input with a typed error naming the frame, and encodes nothing of the batch', () => {
    const cases: [string, string][] = [
      [frames[0].slice(0, 60), 'E_BAD_JSON'],
      ['not json', 'E_BAD_JSON'],
      [frames[0].replace('"t":5266583935', '"t":"5266583935"'), 'E_BAD_JSON'],
      [frames[0].replace('"p":"61800.30"', '"p":61800.30'), 'E_BAD_JSON'],
      ['{"result":null,"id":1}', 'E_NOT_A_TRADE'],
      [frames[0].replace('"e":"trade"', '"e":"aggTrade"'), 'E_NOT_A_TRADE'],
      [frames[0].replace(',"q":"0.006"', ''), 'E_NOT_A_TRADE'],
      [frames[0].replace('"s":"BTCUSDT"', '"s":"SOLUSDT"'), 'E_UNKNOWN_SYMBOL'],
      [frames[0].replace('"p":"61800.30"', '"p":"61,800"'), 'E_BAD_DECIMAL'],
    ];
    const fresh = new Encoder({ wire, assets: ASSETS, refTime: REF });
    const e = new Encoder({ wire, assets: ASSETS, refTime: REF });
    for (const [bad, code] of cases) {
      const err = errorOf(() => e.encodeJsonLines(Buffer.from([frames[0], frames[1], bad].join('\n'))));
      expect({ bad, code: err.code }).toEqual({ bad, code });
      expect(err.message).toContain('frame #2');
    }
    // Nothing of the failed batches was applied: the same bytes as an untouched encoder.
    const next = Buffer.from(frames.slice(0, 10).join('\n'));
    expect(e.encodeJsonLines(next).framed.equals(fresh.encodeJsonLines(next).framed)).toBe(true);
  });
});

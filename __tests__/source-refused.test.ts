/**
 * A trade frame the parsers refuse (an id past 2^53, which cannot be carried exactly, or a missing
 * field) is never silent: it is counted (in all and for its symbol), logged as a warning naming the
 * symbol (malformed frames: at most 5 per 10 s), and when its id was readable the consumer learns of the
 * lost trade from a gap notice on the wire. Through the fast (Rust) and the slow (JSON.parse) path.
 */
import { LocalExchange } from '../ts/exchange';
import type { TradePayload } from '../ts/exchange/generator';
import { toAssetSpec } from '../ts/cli/forward';
import { BinanceSource, Decoder, Encoder } from '../ts/index';
import { Pipeline, type Transport } from '../ts/pipeline';
import { waitFor } from './source.helpers';

jest.setTimeout(30_000);

const combined = (p: TradePayload): string => `{"stream":"${p.s.toLowerCase()}@trade","data":${JSON.stringify(p)}}`;
const HUGE = '9007199254740993'; // 2^53 + 1: JSON.parse reads it as 2^53

describe.each(['rust', 'js'] as const)('a trade frame the parsers refuse (%s)', (parse) => {
  it('is counted and logged with its symbol, and a readable id is announced as a gap', async () => {
    const ex = new LocalExchange({ symbols: ['BTCUSDT'], rate: 0, seed: 3 });
    const addr = await ex.start();
    ex.publish('BTCUSDT', 5);
    const warnings: { msg: string; fields?: { symbol?: string } }[] = [];
    const noop = (): void => undefined;
    const logger = { debug: noop, info: noop, error: noop, warn: (msg: string, fields?: object) => warnings.push({ msg, fields }) };
    const source = new BinanceSource({ symbols: ['BTCUSDT'], wsUrl: addr.wsUrl, restUrl: addr.restUrl, logger });
    const frames: Buffer[] = [];
    const out: Transport = { name: 'collect', publish: (b) => void frames.push(Buffer.from(b)), consumers: () => 1, drops: () => 0, close: async () => {} };
    let pipeline: Pipeline | undefined;
    try {
      const encoder = new Encoder({ wire: 'v2', assets: (await source.prepare()).map((i) => toAssetSpec(i)) });
      const header = encoder.header();
      pipeline = new Pipeline({ source, encoder, transports: [out], heartbeatMs: 0, parse });
      await pipeline.start();
      await waitFor(() => ex.clientCount === 1, 5000, 'the connection');

      const first = ex.publish('BTCUSDT', 20);
      const last = first[first.length - 1];
      // An id past 2^53, then the next trade: the refused id cannot be told, so no gap is due.
      ex.sendGarbage([combined(last).replace(`"t":${last.t}`, `"t":${HUGE}`)]);
      const [after] = ex.publish('BTCUSDT', 1);
      // A trade with a readable id but no price, then the next: the consumer must learn of the hole.
      ex.skipIds('BTCUSDT', 1);
      const lost: TradePayload = { ...after, t: after.t + 1, T: after.T + 1, E: after.E + 1 };
      ex.sendGarbage([combined(lost).replace(/"p":"[^"]*",/, '')]);
      const more = ex.publish('BTCUSDT', 20);
      const want = [...first, after, ...more].map((p) => p.t);
      await waitFor(() => source.stats().trades >= want.length, 10_000, `${want.length} trades`);
      await new Promise((r) => setTimeout(r, 50));
      pipeline.flush();

      const msgs = new Decoder(header).decodeFrames(Buffer.concat(frames));
      const ids = msgs.flatMap((m) => (m.kind === 'trade' ? [m.tradeId] : []));
      expect(ids.slice(-want.length)).toEqual(want);
      const gaps = msgs.filter((m) => m.kind === 'gap');
      expect(gaps).toEqual([expect.objectContaining({ symbol: 'BTCUSDT', lastId: after.t, nextId: lost.t + 1, reason: 'jump' })]);
      // sendGarbage adds a binary frame each time: refused too, but of no symbol.
      expect(source.stats().malformed).toBe(4);
      expect(source.stats().perSymbol.BTCUSDT.malformed).toBe(2);
      const mine = warnings.filter((w) => w.fields?.symbol === 'BTCUSDT' && /malformed/.test(w.msg));
      expect(mine).toHaveLength(2);
      expect(mine[0].msg).toContain(`trade id ${HUGE} is not an integer in 0..2^53`);
      if (parse === 'rust') expect(pipeline.fastTrades).toBeGreaterThan(0);

      // A symbol whose every frame is refused: each counted, the log held to 5 per 10 s.
      ex.sendGarbage(Array.from({ length: 12 }, () => combined(last).replace(`"t":${last.t}`, `"t":${HUGE}`)));
      await waitFor(() => source.stats().malformed === 4 + 12 + 1, 5000, 'every refused frame counted');
      expect(source.stats().perSymbol.BTCUSDT.malformed).toBe(14);
      expect(warnings.filter((w) => w.fields?.symbol === 'BTCUSDT' && /malformed/.test(w.msg))).toHaveLength(5);
    } finally {
      await pipeline?.stop();
      await source.stop();
      await ex.stop();
    }
  });
});

/**
 * `Encoder.ingest` writes its frames into a reused output slab, through arrays bound once to one
 * zero-argument native call. What that must never change: bytes handed out stay as they were for
 * as long as anyone keeps them (a transport's turn, a socket's write queue), across later runs and
 * slab changes; two encoders (or two copies of the library) taking turns each run on their own
 * state; and a forwarder whose event-loop turns hold many socket reads puts every trade on the
 * wire, byte for byte.
 */
import { LocalExchange } from '../ts/exchange';
import type { TradePayload } from '../ts/exchange/generator';
import { toAssetSpec } from '../ts/cli/forward';
import { BinanceSource, Decoder, Encoder } from '../ts/index';
import type { IngestState } from '../ts/index';
import { Pipeline, type Transport } from '../ts/pipeline';
import { FramePool } from '../ts/source/frame-pool';
import { TcpFanout } from '../ts/transports/tcp';
import { useCleanups } from './helpers/fanout';
import { framesLength, RawClient } from './helpers/net';
import { canon, until } from './helpers/stream';
import { errorOf } from './support/errors';

jest.setTimeout(30_000);
const defer = useCleanups();

const ASSETS = [
  { symbol: 'BTCUSDT', refPrice: '61800.30', refQty: '0.006', priceScale: 2, qtyScale: 3 },
  { symbol: 'ETHUSDT', refPrice: '2600.00', refQty: '0.100', priceScale: 2, qtyScale: 3 },
];
const REF = 1_723_161_256_000;

/** Consecutive trade frames of one symbol, from `firstId`. */
function frames(symbol: string, firstId: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const id = firstId + i;
    const price = `${symbol === 'BTCUSDT' ? 61800 : 2600}.${String(10 + (id % 89)).padStart(2, '0')}`;
    return `{"stream":"${symbol.toLowerCase()}@trade","data":{"e":"trade","E":${REF + id},"T":${REF + id},"s":"${symbol}","t":${id},"p":"${price}","q":"0.${String(1 + (id % 997)).padStart(3, '0')}","X":"MARKET","m":${id % 3 === 0}}}`;
  });
}

/** Feeds frames to `enc.ingest` as the source does (one reused pool, cleared per read). */
class Feeder {
  readonly pool = new FramePool();
  readonly state: IngestState = { lastIds: new Float64Array([NaN, NaN]), blocked: new Uint8Array(2) };
  readonly out: Buffer[] = [];

  constructor(readonly enc: Encoder) {}

  read(texts: readonly string[]): void {
    this.pool.clear();
    for (const t of texts) {
      const b = Buffer.from(t);
      this.pool.push(b, 0, b.length, 0, 0);
    }
    const run = this.enc.ingest(this.pool, 0, this.state);
    expect({ consumed: run.consumed, stop: run.stop }).toEqual({ consumed: texts.length, stop: 'end' });
    this.out.push(run.framed);
  }
}

/** What the same frames give when encoded in one go by a fresh encoder. */
function reference(texts: readonly string[]): Buffer {
  return new Encoder({ wire: 'v2', assets: ASSETS, refTime: REF }).encodeJsonLines(Buffer.from(texts.join('\n'))).framed;
}

describe('Encoder.ingest output buffers', () => {
  it('keeps every run it handed out intact across later runs and new slabs', () => {
    const btc = frames('BTCUSDT', 1_000_001, 60_000);
    const f = new Feeder(new Encoder({ wire: 'v2', assets: ASSETS, refTime: REF }));
    f.state.lastIds[0] = 1_000_000;
    let at = 0;
    // Reads of one frame (the low-rate case) between reads of 4000 (each may need a new slab).
    while (at < btc.length) {
      for (let k = 0; k < 200 && at < btc.length; k++) f.read(btc.slice(at, ++at));
      const n = Math.min(4000, btc.length - at);
      f.read(btc.slice(at, (at += n)));
    }
    // Runs were written into a few shared slabs, not a buffer each, and none was rewritten.
    expect(new Set(f.out.map((b) => b.buffer)).size).toBeLessThan(f.out.length / 10);
    expect(Buffer.concat(f.out).equals(reference(btc))).toBe(true);
    expect(f.state.lastIds[0]).toBe(1_060_000);
  });

  it('two encoders taking turns each run on their own frames, state and output', () => {
    const a = new Feeder(new Encoder({ wire: 'v2', assets: ASSETS, refTime: REF }));
    const b = new Feeder(new Encoder({ wire: 'v2', assets: ASSETS, refTime: REF }));
    const btc = frames('BTCUSDT', 501, 3000);
    const eth = frames('ETHUSDT', 9001, 3000);
    const c = new Feeder(new Encoder({ wire: 'v2', assets: ASSETS, refTime: REF }));
    const other = frames('BTCUSDT', 1, 10);
    a.state.lastIds[0] = 500;
    b.state.lastIds[1] = 9000;
    c.state.lastIds[0] = 0;
    for (let i = 0; i < btc.length; i++) {
      a.read([btc[i]]);
      b.read([eth[i]]);
      // Sometimes a third encoder runs in between.
      if (i % 700 === 0) c.read([other[i / 700]]);
    }
    expect(Buffer.concat(c.out).equals(reference(other.slice(0, 5)))).toBe(true);
    expect(Buffer.concat(a.out).equals(reference(btc))).toBe(true);
    expect(Buffer.concat(b.out).equals(reference(eth))).toBe(true);
    expect(Array.from(a.state.lastIds)).toEqual([3500, NaN]);
    expect(Array.from(b.state.lastIds)).toEqual([NaN, 12000]);
  });
});

describe('Encoder.ingest with memory taken away', () => {
  it('a detached output or frame buffer is never written through: a new slab, or E_INVALID_ARG', () => {
    const btc = frames('BTCUSDT', 101, 4);
    const f = new Feeder(new Encoder({ wire: 'v2', assets: ASSETS, refTime: REF }));
    f.state.lastIds[0] = 100;
    f.read([btc[0]]);
    // A transport moves the bytes it was given to a worker: the slab behind them goes too.
    const slab = f.out[0].buffer as ArrayBuffer;
    const moved = structuredClone(slab, { transfer: [slab] });
    expect(moved.byteLength).toBeGreaterThan(0);
    expect(f.out[0].length).toBe(0);
    f.read([btc[1]]);
    expect(f.out[1].equals(reference(btc.slice(0, 2)).subarray(reference(btc.slice(0, 1)).length))).toBe(true);
    // The caller's own frame pool is detached, then given again as it is.
    const own = { pool: Uint8Array.from(Buffer.from(btc[2])), ends: Uint32Array.of(btc[2].length), count: 1 };
    expect(f.enc.ingest(own, 0, f.state).consumed).toBe(1);
    const ownBuffer = own.pool.buffer as ArrayBuffer;
    structuredClone(ownBuffer, { transfer: [ownBuffer] });
    expect(own.pool.length).toBe(0);
    expect(errorOf(() => f.enc.ingest(own, 0, f.state))).toMatchObject({ code: 'E_INVALID_ARG' });
    expect(f.state.lastIds[0]).toBe(103);
  });
});

describe('forwarder with many socket reads per event-loop turn', () => {
  it('puts every trade on the TCP wire in order, exactly as sent', async () => {
    const symbols = ['BTCUSDT', 'ETHUSDT'];
    const ex = new LocalExchange({ symbols, rate: 0, seed: 5 });
    const addr = await ex.start();
    defer(() => ex.stop());
    for (const s of symbols) ex.publish(s, 5);
    const source = new BinanceSource({ symbols, wsUrl: addr.wsUrl, restUrl: addr.restUrl });
    const infos = await source.prepare();
    const encoder = new Encoder({ wire: 'v2', assets: infos.map((i) => toAssetSpec(i)) });
    const fanout = new TcpFanout({ host: '127.0.0.1', port: 0, heartbeatMs: 0, encoder });
    const { port } = await fanout.listen();
    // Counts publishes per event-loop turn, to show the test did put many reads in one turn.
    let inTurn = 0;
    let maxInTurn = 0;
    const counting: Transport = {
      name: 'tcp',
      publish: (b) => {
        if (inTurn++ === 0) setImmediate(() => (inTurn = 0));
        maxInTurn = Math.max(maxInTurn, inTurn);
        fanout.publish(b);
      },
      consumers: () => fanout.consumers(),
      drops: () => fanout.drops(),
      close: () => fanout.close(),
    };
    const pipeline = new Pipeline({ source, encoder, transports: [counting], heartbeatMs: 0 });
    defer(() => pipeline.stop());
    const client = new RawClient(port);
    defer(() => client.close());
    await client.connected;
    await pipeline.start();
    await until(() => ex.clientCount === 1 && fanout.consumers() === 1, 'exchange and client connections');
    const sent: TradePayload[] = [];
    for (let burst = 0; burst < 8; burst++) {
      // ~2000 frames of ~190 bytes at once: several socket reads for the forwarder in one turn.
      for (let i = 0; i < 2000; i++) sent.push(...ex.publish(symbols[i % 2], 1));
      await new Promise((r) => setImmediate(r));
    }
    const decoded = (): { symbol: string; id: number | undefined; price: string; qty: string }[] => {
      const fs = client.frames();
      if (fs.length < 2) return [];
      const body = client.data.subarray(framesLength(client.data, 2), framesLength(client.data, fs.length));
      return new Decoder(fs[1])
        .decodeFrames(body)
        .flatMap((m) => (m.kind === 'trade' ? [{ symbol: m.symbol, id: m.tradeId, price: canon(m.price), qty: canon(m.qty) }] : []));
    };
    await until(() => decoded().length >= sent.length, `${sent.length} trades at the client`, 20_000);
    expect(decoded()).toEqual(sent.map((p) => ({ symbol: p.s, id: p.t, price: canon(p.p), qty: canon(p.q) })));
    expect(maxInTurn).toBeGreaterThan(1);
    expect(pipeline.fastTrades).toBeGreaterThanOrEqual(sent.length - symbols.length);
  });
});

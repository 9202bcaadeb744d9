/** The pipeline's 'handoff' event: what stats and benchmarks read after each hand-off to the transports. */
import { EventEmitter } from 'node:events';
import { Encoder } from '../ts/codec';
import { Pipeline, type Handoff, type Transport } from '../ts/pipeline';
import { Stats } from '../ts/observe/stats';
import { assetSpecs, makeTrades } from './helpers/stream';

interface Copied {
  count: number;
  asset: number[];
  tradeId: number[];
  tradeTime: number[];
  recvMonoNs: number[];
  sentMonoNs: number;
}

const copy = (h: Handoff): Copied => ({
  count: h.count,
  asset: Array.from(h.asset),
  tradeId: Array.from(h.tradeId),
  tradeTime: Array.from(h.tradeTime),
  recvMonoNs: Array.from(h.recvMonoNs),
  sentMonoNs: h.sentMonoNs,
});

/** A transport that keeps what it is handed. */
function memorySink(published: Buffer[], publishedAt: number[] = []): Transport {
  return {
    name: 'memory',
    publish: (b) => {
      published.push(b);
      publishedAt.push(Number(process.hrtime.bigint()));
    },
    consumers: () => 1,
    drops: () => 0,
    close: async () => undefined,
  };
}

function setUp(stats?: Stats): { source: EventEmitter; pipeline: Pipeline; published: Buffer[]; publishedAt: number[] } {
  const source = Object.assign(new EventEmitter(), { start: async () => undefined, stop: async () => undefined });
  const encoder = new Encoder({ wire: 'v2', assets: assetSpecs(), refTime: 1_723_100_000_000 });
  const published: Buffer[] = [];
  const publishedAt: number[] = [];
  const pipeline = new Pipeline({ source, encoder, transports: [memorySink(published, publishedAt)], stats, heartbeatMs: 0 });
  return { source, pipeline, published, publishedAt };
}

describe('Pipeline handoff event', () => {
  it('reports every trade of each hand-off, in order, with its receive time and the send time', async () => {
    const { source, pipeline, published, publishedAt } = setUp();
    expect(pipeline.symbols).toEqual(['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
    const seen: Copied[] = [];
    pipeline.on('handoff', (h) => seen.push(copy(h)));
    await pipeline.start();
    const trades = makeTrades(500, 3);
    const now = process.hrtime.bigint();
    trades.forEach((t, i) => (t.recvMonoNs = now - BigInt(1000 * (trades.length - i))));
    // Two event-loop turns: two hand-offs.
    for (const t of trades.slice(0, 200)) source.emit('trade', t);
    await new Promise((r) => setImmediate(r));
    for (const t of trades.slice(200)) source.emit('trade', t);
    await new Promise((r) => setImmediate(r));
    await pipeline.stop();

    expect(seen.map((h) => h.count)).toEqual([200, 300]);
    expect(published).toHaveLength(2);
    const all = { asset: seen.flatMap((h) => h.asset), tradeId: seen.flatMap((h) => h.tradeId), tradeTime: seen.flatMap((h) => h.tradeTime), recv: seen.flatMap((h) => h.recvMonoNs) };
    expect(all.asset).toEqual(trades.map((t) => pipeline.symbols.indexOf(t.symbol)));
    expect(all.tradeId).toEqual(trades.map((t) => t.tradeId));
    expect(all.tradeTime).toEqual(trades.map((t) => t.tradeTime));
    expect(all.recv).toEqual(trades.map((t) => Number(t.recvMonoNs)));
    seen.forEach((h, i) => {
      expect(h.asset).toHaveLength(h.count);
      // Taken after the (only) transport's publish returned.
      expect(h.sentMonoNs).toBeGreaterThanOrEqual(publishedAt[i]);
      expect(h.sentMonoNs).toBeLessThan(publishedAt[i] + 1e9);
    });
  });

  it('feeds the stats: per-symbol counts and receive-to-hand-off latency', async () => {
    const stats = new Stats(['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
    const observed: string[] = [];
    stats.observe((symbol) => observed.push(symbol));
    const { source, pipeline } = setUp(stats);
    await pipeline.start();
    const trades = makeTrades(300, 5);
    const recv = process.hrtime.bigint() - 5_000_000n; // 5 ms before now
    for (const t of trades) source.emit('trade', { ...t, recvMonoNs: recv });
    await new Promise((r) => setImmediate(r));
    await pipeline.stop();
    const s = stats.snapshot();
    expect(s.trades).toBe(300);
    for (const sym of ['BTCUSDT', 'ETHUSDT', 'SOLUSDT']) {
      expect(s.perSymbol[sym].trades).toBe(trades.filter((t) => t.symbol === sym).length);
    }
    expect(observed).toEqual(trades.map((t) => t.symbol));
    expect(s.receiveToHandoffUs.p50).toBeGreaterThanOrEqual(4900);
    expect(s.receiveToHandoffUs.p50).toBeLessThan(1_000_000);
  });

  it('encodes each batch once: every transport is handed the same bytes, the same buffer', async () => {
    const source = Object.assign(new EventEmitter(), { start: async () => undefined, stop: async () => undefined });
    const encoder = new Encoder({ wire: 'v2', assets: assetSpecs(), refTime: 1_723_100_000_000 });
    const sinks: Buffer[][] = [[], [], []];
    const pipeline = new Pipeline({ source, encoder, transports: sinks.map((p) => memorySink(p)), heartbeatMs: 0 });
    await pipeline.start();
    for (const t of makeTrades(100, 3)) source.emit('trade', t);
    await new Promise((r) => setImmediate(r));
    await pipeline.stop();
    expect(sinks[0].length).toBeGreaterThan(0);
    for (const other of sinks.slice(1)) {
      expect(other).toHaveLength(sinks[0].length);
      other.forEach((b, i) => expect(b).toBe(sinks[0][i]));
    }
  });
});

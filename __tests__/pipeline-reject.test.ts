/**
 * A trade the encoder refuses (a price it cannot carry) is not forwarded, and consumers learn of it
 * from the bytes on the wire: a v2 gap notice for exactly its id, or in v1 (no such frame) the
 * transport's own signal. The pipeline keeps going, whatever the id.
 */
import { EventEmitter } from 'node:events';
import { Decoder, Encoder } from '../ts/codec';
import type { DecodedMessage, WireVersion } from '../ts/codec';
import { Pipeline, type Transport } from '../ts/pipeline';
import type { GapEvent, Trade } from '../ts/types';
import { assetSpecs, oneTrade } from './helpers/stream';

const REF = 1_723_100_000_000;

const trade = (tradeId: number, price: string): Trade => oneTrade('BTCUSDT', tradeId, price, REF);

function setUp(wire: WireVersion): {
  source: EventEmitter;
  pipeline: Pipeline;
  decoded: () => DecodedMessage[];
  uncarried: GapEvent[];
} {
  const source = Object.assign(new EventEmitter(), { start: async () => undefined, stop: async () => undefined });
  const encoder = new Encoder({ wire, assets: assetSpecs(), refTime: REF });
  const decoder = new Decoder(encoder.header());
  const published: Buffer[] = [];
  const uncarried: GapEvent[] = [];
  const sink: Transport = {
    name: 'memory',
    publish: (b) => published.push(Buffer.from(b)),
    consumers: () => 1,
    drops: () => 0,
    close: async () => undefined,
    uncarriedGap: (g) => uncarried.push(g),
  };
  const pipeline = new Pipeline({ source, encoder, transports: [sink], heartbeatMs: 0 });
  return { source, pipeline, decoded: () => decoder.decodeFrames(Buffer.concat(published.splice(0))), uncarried };
}

describe.each<WireVersion>(['v2', 'v1'])('a trade the encoder refuses (%s)', (wire) => {
  it('is not forwarded, and the consumer is told its id is missing', async () => {
    const { source, pipeline, decoded, uncarried } = setUp(wire);
    await pipeline.start();
    for (const t of [trade(7, '61800.30'), trade(8, '1e-8'), trade(9, '61800.40')]) source.emit('trade', t);
    pipeline.flush();
    const got = decoded();
    expect(got.filter((m) => m.kind === 'trade').map((m) => m.kind === 'trade' && m.price)).toEqual(
      wire === 'v2' ? ['61800.30', '61800.40'] : ['61800.3', '61800.4'],
    );
    if (wire === 'v2') {
      expect(got.map((m) => m.kind)).toEqual(['trade', 'gap', 'trade']);
      expect(got[1]).toMatchObject({ kind: 'gap', symbol: 'BTCUSDT', lastId: 7, nextId: 9 });
      expect(uncarried).toEqual([]);
    } else {
      expect(uncarried).toEqual([{ symbol: 'BTCUSDT', lastId: 7, nextId: 9, reason: 'jump' }]);
    }
    expect(pipeline.rejected).toBe(1);
    await pipeline.stop();
  });

  it('keeps the pipeline going when the gap cannot be written as a notice (trade id 0)', async () => {
    const { source, pipeline, decoded, uncarried } = setUp(wire);
    await pipeline.start();
    for (const t of [trade(0, '1e-8'), trade(1, '61800.40')]) source.emit('trade', t);
    expect(() => pipeline.flush()).not.toThrow();
    const got = decoded();
    // The transports say so in their own way, as for any gap the wire cannot carry.
    expect(got.map((m) => m.kind)).toEqual(['trade']);
    expect(uncarried).toEqual([{ symbol: 'BTCUSDT', lastId: -1, nextId: 1, reason: 'jump' }]);
    expect(pipeline.rejected).toBe(1);
    source.emit('trade', trade(2, '61800.50'));
    pipeline.flush();
    expect(decoded().map((m) => m.kind === 'trade' && m.price)).toEqual([wire === 'v2' ? '61800.50' : '61800.5']);
    await pipeline.stop();
  });
});

/**
 * End to end through the real forwarder runner: local exchange (WebSocket + REST) -> source ->
 * pipeline -> NatsPublisher -> nats-server -> NatsConsumers. What the consumers decode is exactly
 * what the exchange sent, from their snapshot on, and the pipeline's heartbeats reach them.
 */
import { LocalExchange } from '../ts/exchange';
import { startForwarder } from '../ts/cli/forward';
import { NatsConsumer } from '../ts/clients/nats';
import { NatsPublisher } from '../ts/transports/nats';
import type { TradePayload } from '../ts/exchange/generator';
import type { Trade } from '../ts/types';
import { NatsServer } from './helpers/nats-server';
import { Recorder } from './helpers/nats-feed';
import { waitFor } from './source.helpers';

jest.setTimeout(60_000);

const ASSETS = ['BTCUSDT', 'ETHUSDT'];

it('forwards the exchange’s trades exactly to consumers of all and of one symbol', async () => {
  const server = await NatsServer.start();
  const ex = new LocalExchange({ symbols: ASSETS, rate: 300, seed: 11, tickMs: 5 });
  const sent: TradePayload[] = [];
  ex.on('trade', (t: TradePayload) => sent.push(t));
  const addr = await ex.start();
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const fwd = await startForwarder(
      {
        assets: ASSETS,
        'ws-url': addr.wsUrl,
        'rest-url': addr.restUrl,
        'stats-interval': 0,
        'heartbeat-ms': 100,
        'log-level': 'error',
      },
      (encoder, logger) => NatsPublisher.connect({ url: server.url, prefix: 'e2e', encoder, logger }),
    );
    stops.push(() => fwd.stop());
    // What entered the pipeline (the exchange's last trades may still be in flight when it stops).
    const forwarded: Trade[] = [];
    fwd.source.on('trade', (t: Trade) => forwarded.push(t));
    const consumers = await Promise.all(
      [undefined, ['ETHUSDT']].map(async (symbols) => {
        const c = await NatsConsumer.connect({ url: server.url, prefix: 'e2e', symbols });
        stops.push(() => c.close());
        return { c, rec: new Recorder(c), symbols };
      }),
    );
    await waitFor(() => consumers.every(({ rec }) => rec.count('synced') === 1), 10_000, 'both consumers synced');
    await waitFor(() => consumers.every(({ rec }) => rec.trades().length >= 100), 20_000, '100 trades at each consumer');
    await ex.stop();
    await waitFor(() => fwd.transport.consumers() === 2, 10_000, 'the forwarder counting two consumers');

    for (const { rec, symbols } of consumers) {
      const want = forwarded.filter((t) => !symbols || symbols.includes(t.symbol));
      await waitFor(() => rec.trades().at(-1)?.tradeId === want.at(-1)?.tradeId, 10_000, 'the last trade forwarded');
      // Exactly the exchange's values, and from the snapshot on a contiguous run of what it sent.
      const bySymbolId = new Map(sent.map((t) => [`${t.s} ${t.t}`, `${t.s} ${t.t} ${t.T} ${t.p} ${t.q} ${t.m}`]));
      const got = rec.trades().map((t) => `${t.symbol} ${t.tradeId} ${t.time} ${t.price} ${t.qty} ${t.maker}`);
      expect(got).toEqual(rec.trades().map((t) => bySymbolId.get(`${t.symbol} ${t.tradeId}`)));
      const sentIds = sent.filter((t) => (symbols ?? ASSETS).includes(t.s)).map((t) => `${t.s} ${t.t}`);
      const start = sentIds.indexOf(`${rec.trades()[0].symbol} ${rec.trades()[0].tradeId}`);
      expect(rec.trades().map((t) => `${t.symbol} ${t.tradeId}`)).toEqual(sentIds.slice(start, start + got.length));
      expect(rec.count('lost')).toBe(0);
      // The pipeline's heartbeats (the feed is quiet now) arrive on <prefix>.heartbeat.
      await waitFor(() => rec.count('heartbeat') > 0, 5_000, 'a heartbeat');
    }
    expect(fwd.transport.drops()).toBe(0);
  } finally {
    for (const stop of stops.reverse()) await stop();
    await ex.stop();
    await server.stop();
  }
});

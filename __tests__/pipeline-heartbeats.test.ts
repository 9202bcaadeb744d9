/**
 * A library user who builds Pipeline + TcpFanout + ShmPublisher with default options gets one
 * heartbeat stream: the pipeline's, on every transport. A fan-out heartbeat of its own would take
 * a v2 sequence number the ring never carries, and the ring's consumer would report frames lost.
 */
import { EventEmitter } from 'node:events';
import { Encoder, type DecodedMessage } from '../ts/codec';
import { connect, type TcpClientEvent } from '../ts/clients/tcp';
import { ShmConsumer, type ShmDecodeEvent } from '../ts/clients/shm';
import { Pipeline } from '../ts/pipeline';
import { headerCopyOf, ShmPublisher } from '../ts/transports/shm';
import { TcpFanout } from '../ts/transports/tcp';
import { collect } from './helpers/net';
import { assetSpecs, makeTrades, until } from './helpers/stream';
import { ShmScene } from './shm.helpers';

const scene = new ShmScene('pipeline-hb');
afterEach(() => scene.cleanup());

const seqOf = (m: { seq?: number }): number | undefined => m.seq;

describe('Pipeline + TcpFanout + ShmPublisher, default options, v2', () => {
  it('sends each heartbeat on every transport: the ring and TCP see the same sequence numbers, no loss', async () => {
    const cleanups: (() => unknown)[] = [];
    try {
      const encoder = new Encoder({ wire: 'v2', assets: assetSpecs(), refTime: 1_723_100_000_000 });
      // The fan-out first, as a user would set up a server before the pipeline: its heartbeat
      // clock then runs ahead of the pipeline's.
      const fanout = new TcpFanout({ host: '127.0.0.1', port: 0, encoder });
      cleanups.push(() => fanout.close());
      const { port } = await fanout.listen();
      const shm = ShmPublisher.create({ name: scene.qname('ring'), capacity: 1 << 16, headerSource: () => headerCopyOf(encoder) });
      cleanups.push(() => shm.close());
      const source = Object.assign(new EventEmitter(), { start: async () => undefined, stop: async () => undefined });
      const pipeline = new Pipeline({ source, encoder, transports: [fanout, shm] });
      await pipeline.start();
      cleanups.push(() => pipeline.stop());

      const tcp = connect({ host: '127.0.0.1', port, retryMinMs: 20, retryMaxMs: 100 });
      cleanups.push(() => tcp.close());
      const t = collect<TcpClientEvent>(tcp);
      const consumer = scene.track(ShmConsumer.open(shm.queue));
      const ac = new AbortController();
      const ring: (DecodedMessage | ShmDecodeEvent)[] = [];
      const reading = (async () => {
        for await (const m of consumer.decoded({ signal: ac.signal, sleepMs: 2 })) ring.push(m);
      })();
      cleanups.push(() => reading);
      cleanups.push(() => ac.abort());
      await until(() => t.events.some((e) => e.kind === 'connected'), 'the tcp client');

      // Idle for more than two heartbeat intervals (1000 ms each, the default of both).
      await new Promise((r) => setTimeout(r, 2600));
      const trades = makeTrades(50, 3);
      for (const tr of trades) source.emit('trade', tr);
      await until(() => t.trades.length === trades.length, 'every trade over tcp');
      await until(() => ring.filter((m) => m.kind === 'trade').length === trades.length, 'every trade from the ring');

      const tcpHeartbeats = t.events.filter((e) => e.kind === 'heartbeat');
      expect(tcpHeartbeats.length).toBeGreaterThanOrEqual(2);
      expect(ring.filter((m) => m.kind === 'lost')).toEqual([]);
      expect(t.events.filter((e) => e.kind === 'lost' || e.kind === 'gap')).toEqual([]);
      const ringSeqs = ring.filter((m) => m.kind === 'trade' || m.kind === 'heartbeat').map((m) => seqOf(m as { seq?: number }));
      const tcpSeqs = t.events.filter((e) => e.kind === 'trade' || e.kind === 'heartbeat').map((e) => seqOf(e as { seq?: number }));
      // The ring consumer attached after the pipeline started, so its first frame may come later.
      expect(ringSeqs.length).toBeGreaterThan(trades.length);
      expect(tcpSeqs.slice(tcpSeqs.indexOf(ringSeqs[0]))).toEqual(ringSeqs);
      for (let i = 1; i < ringSeqs.length; i++) expect(ringSeqs[i]).toBe((ringSeqs[i - 1]! + 1) % 2 ** 32);
    } finally {
      for (const c of cleanups.reverse()) await c();
    }
  }, 20_000);
});

describe('TcpFanout used alone, default options, v2', () => {
  it('still sends its own heartbeats', async () => {
    const encoder = new Encoder({ wire: 'v2', assets: assetSpecs(), refTime: 1_723_100_000_000 });
    const fanout = new TcpFanout({ host: '127.0.0.1', port: 0, encoder });
    const { port } = await fanout.listen();
    const tcp = connect({ host: '127.0.0.1', port, retryMinMs: 20, retryMaxMs: 100 });
    try {
      const t = collect<TcpClientEvent>(tcp);
      await until(() => t.events.some((e) => e.kind === 'heartbeat'), 'a heartbeat', 3000);
    } finally {
      tcp.close();
      await fanout.close();
    }
  }, 10_000);
});

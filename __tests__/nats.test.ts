/**
 * The NATS transport and consumer against a real nats-server on loopback: one v2 frame per message
 * on `<prefix>.trades.<SYMBOL>`, snapshot bootstrap and late join, per-asset sequence gap detection
 * and resync, client reconnects and a server restart, and the forwarder's consumer count.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { Decoder, Encoder, frame, splitFrames } from '../ts/codec';
import { NatsConsumer } from '../ts/clients/nats';
import { NatsPublisher } from '../ts/transports/nats';
import { Pipeline } from '../ts/pipeline';
import { PerpSignalError } from '../ts/errors';
import type { Trade } from '../ts/types';
import { NatsServer } from './helpers/nats-server';
import { fixtureTrades } from './oracle/fixture';
import { waitFor } from './source.helpers';
import { key, Recorder, twoAssetStream } from './helpers/nats-feed';
import { oneTrade } from './helpers/stream';

jest.setTimeout(60_000);

const ASSETS = [
  { symbol: 'BTCUSDT', refPrice: '61800.30', refQty: '0.006', priceScale: 2, qtyScale: 3 },
  { symbol: 'ETHUSDT', refPrice: '2500.00', refQty: '0.100', priceScale: 2, qtyScale: 3 },
];

let server: NatsServer;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  server = await NatsServer.start();
});

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

afterAll(async () => {
  await server?.stop();
});

async function publisher(encoder: Encoder, prefix = 'perp'): Promise<NatsPublisher> {
  const pub = await NatsPublisher.connect({ url: server.url, prefix, encoder });
  cleanups.push(() => pub.close());
  return pub;
}

async function consumer(opts: { symbols?: string[]; prefix?: string; idleTimeoutMs?: number } = {}): Promise<{ c: NatsConsumer; rec: Recorder }> {
  const c = await NatsConsumer.connect({ url: server.url, snapshotTimeoutMs: 1000, retryMinMs: 50, retryMaxMs: 200, ...opts });
  cleanups.push(() => c.close());
  const rec = new Recorder(c);
  await rec.until(() => rec.count('synced') >= 1, 'the first snapshot');
  return { c, rec };
}

/** Encodes and publishes `trades` in batches of `batch`, as the pipeline does. */
function feed(enc: Encoder, pub: NatsPublisher, trades: readonly Trade[], batch = 16): void {
  for (let i = 0; i < trades.length; i += batch) pub.publish(enc.encodeBatch(trades.slice(i, i + batch)));
}

/** As `feed`, one batch per millisecond (a live feed's pace, not a burst). */
async function feedPaced(enc: Encoder, pub: NatsPublisher, trades: readonly Trade[], batch = 16): Promise<void> {
  for (let i = 0; i < trades.length; i += batch) {
    pub.publish(enc.encodeBatch(trades.slice(i, i + batch)));
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** A TCP proxy on 127.0.0.1 whose connections the test can cut (a network blip for one client). */
class CuttableProxy {
  private constructor(
    private readonly srv: net.Server,
    private readonly sockets: Set<net.Socket>,
    readonly port: number,
  ) {}

  static async start(target: number): Promise<CuttableProxy> {
    const sockets = new Set<net.Socket>();
    const srv = net.createServer((down) => {
      const up = net.connect(target, '127.0.0.1');
      for (const s of [down, up]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          sockets.delete(s);
          down.destroy();
          up.destroy();
        });
      }
      down.pipe(up);
      up.pipe(down);
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return new CuttableProxy(srv, sockets, (srv.address() as net.AddressInfo).port);
  }

  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.srv.close(() => r()));
  }
}

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('NATS publisher and consumer', () => {
  it('delivers every trade of the real capture exactly, to an all-symbol and a one-symbol consumer', async () => {
    const trades = twoAssetStream(fixtureTrades());
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    const pub = await publisher(enc);
    const all = await consumer();
    const eth = await consumer({ symbols: ['ethusdt'] });
    feed(enc, pub, trades);
    const want = trades.map(key);
    const wantEth = trades.filter((t) => t.symbol === 'ETHUSDT').map(key);
    await all.rec.until(() => all.rec.trades().length >= want.length, `${want.length} trades`, 30_000);
    await eth.rec.until(() => eth.rec.trades().length >= wantEth.length, `${wantEth.length} ETH trades`, 30_000);
    expect(all.rec.trades().map(key)).toEqual(want);
    expect(eth.rec.trades().map(key)).toEqual(wantEth);
    expect(all.rec.count('lost')).toBe(0);
    expect(eth.rec.count('lost')).toBe(0);
    expect(pub.stats().published).toBe(trades.length);
    expect(pub.drops()).toBe(0);
  });

  it('lists in its synced event the symbols it takes: those asked for, or all of the feed', async () => {
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    await publisher(enc);
    const all = await consumer();
    const eth = await consumer({ symbols: ['ethusdt'] });
    const synced = (rec: Recorder): unknown[] => rec.events.filter((e) => e.kind === 'synced').map((e) => 'symbols' in e && e.symbols);
    expect(synced(all.rec)).toEqual([['BTCUSDT', 'ETHUSDT']]);
    expect(synced(eth.rec)).toEqual([['ETHUSDT']]);
  });

  it('puts exactly one v2 frame in each message, on <prefix>.trades.<SYMBOL>', async () => {
    const trades = twoAssetStream(fixtureTrades().slice(0, 50));
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    const start = enc.snapshot();
    const pub = await publisher(enc, 'feeds.binance');
    const raw: NatsConnection = await connect({ servers: server.url });
    cleanups.push(() => raw.close());
    const got: { subject: string; data: Uint8Array }[] = [];
    raw.subscribe('feeds.binance.trades.>', { callback: (_e, m) => void got.push({ subject: m.subject, data: m.data }) });
    await raw.flush();
    const framed = enc.encodeBatch(trades);
    pub.publish(framed);
    await waitFor(() => got.length >= trades.length, 10_000, 'every message on the raw subscription');
    expect(got.map((g) => g.subject)).toEqual(trades.map((t) => `feeds.binance.trades.${t.symbol}`));
    // Each message is one frame's payload, byte for byte, and decodes in stream order.
    expect(got.map((g) => Buffer.from(g.data).toString('hex'))).toEqual(
      splitFrames(framed).map((f) => f.toString('hex')),
    );
    const dec = new Decoder(start);
    expect(got.map((g) => key(dec.decode(g.data) as Extract<ReturnType<Decoder['decode']>, { kind: 'trade' }>))).toEqual(
      trades.map(key),
    );
  });

  it('puts on the wire exactly the worked example of docs/wire-format.md (NATS)', async () => {
    const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'wire-format.md'), 'utf8');
    const section = doc.slice(doc.search(/^## NATS/m));
    const example = section.slice(section.indexOf('### Worked example'));
    const blocks = [...example.matchAll(/\n((?: {4}[0-9a-f ]+\n)+)/g)].map((m) => m[1].replace(/\s+/g, ''));
    const rows = [...example.matchAll(/\| `(perp\.[A-Za-z.]+)` \| `([0-9a-f]+)` \|/g)].map((m) => [m[1], m[2]]);
    expect(blocks).toHaveLength(2);
    expect(rows).toHaveLength(3);

    const enc = new Encoder({
      wire: 'v2',
      refTime: 1723161256000,
      assets: [
        { symbol: 'BTCUSDT', refPrice: '61800.30', refQty: '0.006', priceScale: 2, qtyScale: 3 },
        { symbol: 'ETHUSDT', refPrice: '2650.12', refQty: '0.100', priceScale: 2, qtyScale: 3 },
      ],
    });
    expect(enc.header().toString('hex')).toBe(blocks[0]);
    const pub = await publisher(enc);
    const raw: NatsConnection = await connect({ servers: server.url });
    cleanups.push(() => raw.close());
    const got: string[][] = [];
    raw.subscribe('perp.>', {
      callback: (_e, m) => void (m.subject.startsWith('perp.trades.') || m.subject === 'perp.heartbeat' ? got.push([m.subject, Buffer.from(m.data).toString('hex')]) : 0),
    });
    await raw.flush();
    const t = (symbol: string, time: number, tradeId: number, price: string, qty: string, maker: boolean): Trade => ({
      symbol, tradeTime: time, eventTime: time, tradeId, price, qty, maker, type: 'MARKET', recvWallNs: 0n, recvMonoNs: 0n,
    });
    const batch = Buffer.concat([
      enc.encodeBatch([
        t('BTCUSDT', 1723161256322, 5266583935, '61800.40', '0.006', false),
        t('ETHUSDT', 1723161256330, 4100000000, '2650.15', '1.250', true),
      ]),
      frame(enc.heartbeat(1723161257000) as Buffer),
    ]);
    expect(batch.toString('hex')).toBe(blocks[1]);
    pub.publish(batch);
    await waitFor(() => got.length >= 3, 10_000, 'the three messages');
    expect(got).toEqual(rows);
    const eth = new Decoder(Buffer.from(blocks[0], 'hex'), { checkStreamSeq: false }).decode(Buffer.from(rows[1][1], 'hex'));
    expect(eth).toMatchObject({ symbol: 'ETHUSDT', time: 1723161256330, price: '2650.15', qty: '1.250', maker: true, tradeId: 4100000000 });
  });

  it('lets a consumer join late and decode exactly from its snapshot on', async () => {
    const trades = twoAssetStream(fixtureTrades().slice(0, 4000));
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    const pub = await publisher(enc);
    feed(enc, pub, trades.slice(0, 3001));
    const late = await consumer({ symbols: ['BTCUSDT'] });
    feed(enc, pub, trades.slice(3001));
    const want = trades.slice(3001).filter((t) => t.symbol === 'BTCUSDT').map(key);
    await late.rec.until(() => late.rec.trades().length >= want.length, `${want.length} trades after the join`);
    expect(late.rec.trades().map(key)).toEqual(want);
    expect(late.rec.count('lost')).toBe(0);
  });

  it('joins a busy feed without a spurious loss: the snapshot splits the stream exactly', async () => {
    const trades = twoAssetStream(fixtureTrades());
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    const pub = await publisher(enc);
    // Keep the feed busy (batches of 64 every turn) while consumers join; bounded by the stream.
    let next = 0;
    let stop = false;
    const pump = new Promise<void>((resolve) => {
      const step = (): void => {
        if (stop || next >= trades.length) return resolve();
        feed(enc, pub, trades.slice(next, next + 64));
        next += 64;
        setImmediate(step);
      };
      step();
    });
    const joined = await Promise.all([consumer(), consumer({ symbols: ['BTCUSDT'] }), consumer({ symbols: ['ETHUSDT'] })]);
    await waitFor(() => next >= 8000 || next >= trades.length, 10_000, 'some more trades after the joins');
    stop = true;
    await pump;
    const sent = trades.slice(0, next);
    for (const [i, { rec }] of joined.entries()) {
      const want = sent.filter((t) => i === 0 || t.symbol === (i === 1 ? 'BTCUSDT' : 'ETHUSDT'));
      await rec.until(() => rec.trades().at(-1)?.tradeId === want.at(-1)?.tradeId, `consumer ${i}: the last trade sent`);
      expect(rec.count('lost')).toBe(0);
      const got = rec.trades().map(key);
      expect(got.length).toBeGreaterThan(0);
      // A contiguous, exact tail of what was sent: from the snapshot point on, nothing missing.
      expect(got).toEqual(want.slice(want.length - got.length).map(key));
    }
  });

  it('detects a lost message by its per-asset sequence, never decodes past it, and resyncs', async () => {
    const trades = twoAssetStream(fixtureTrades().slice(0, 600));
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    const pub = await publisher(enc);
    const btc = await consumer({ symbols: ['BTCUSDT'] });
    feed(enc, pub, trades.slice(0, 200));
    // Core NATS may drop a message: lose the next BTC frame on the way (its ETH neighbour goes out).
    const frames = splitFrames(enc.encodeBatch(trades.slice(200, 202)));
    expect(trades[200].symbol).toBe('BTCUSDT');
    pub.publish(frame(frames[1]));
    feed(enc, pub, trades.slice(202, 204));
    await btc.rec.until(() => btc.rec.count('synced') >= 2, 'a resync after the loss');
    feed(enc, pub, trades.slice(204));
    const btcTrades = trades.filter((t) => t.symbol === 'BTCUSDT');
    await btc.rec.until(() => btc.rec.trades().at(-1)?.tradeId === btcTrades.at(-1)?.tradeId, 'the last BTC trade');

    const lost = btc.rec.events.filter((e) => e.kind === 'lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ kind: 'lost', reason: 'lost', symbol: 'BTCUSDT' });
    // Every trade handed out is a true one, in order: nothing decoded against the broken state.
    const truth = new Map(btcTrades.map((t) => [t.tradeId, key(t)]));
    const got = btc.rec.trades();
    for (const t of got) expect(key(t)).toBe(truth.get(t.tradeId as number));
    const ids = got.map((t) => t.tradeId as number);
    expect(ids.slice(0, 100)).toEqual(btcTrades.slice(0, 100).map((t) => t.tradeId));
    expect(ids).not.toContain(trades[200].tradeId);
    // After the resync, the stream is complete again up to the end.
    const resumeAt = ids.findIndex((id) => id > trades[200].tradeId);
    const resumed = ids.slice(resumeAt);
    const wantTail = btcTrades.map((t) => t.tradeId).filter((id) => id >= resumed[0]);
    expect(resumed).toEqual(wantTail);
    const order = btc.rec.events.map((e) => e.kind).filter((k) => k !== 'trade');
    expect(order).toEqual(['synced', 'lost', 'synced']);
  });

  it('detects exactly 256 lost frames of one asset (invisible in the low byte), says lost and resyncs', async () => {
    const trades = twoAssetStream(fixtureTrades().slice(0, 800));
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    const pub = await publisher(enc);
    const btc = await consumer({ symbols: ['BTCUSDT'] });
    // A filter between the publisher and NATS: the next 256 BTC messages after the first 100 vanish.
    const nc = (pub as unknown as { nc: NatsConnection }).nc;
    const realPublish = nc.publish.bind(nc);
    let btcSeen = 0;
    nc.publish = (subject, payload, opts) => {
      if (subject === 'perp.trades.BTCUSDT' && ++btcSeen > 100 && btcSeen <= 356) return;
      realPublish(subject, payload, opts);
    };
    feed(enc, pub, trades);
    const btcTrades = trades.filter((t) => t.symbol === 'BTCUSDT');
    await btc.rec.until(() => btc.rec.count('lost') >= 1, 'the loss');
    const lost = btc.rec.events.filter((e) => e.kind === 'lost');
    expect(lost[0]).toMatchObject({ kind: 'lost', reason: 'lost', symbol: 'BTCUSDT', missing: 256 });
    await btc.rec.until(() => btc.rec.count('synced') >= 2, 'a resync after the loss');
    const more = twoAssetStream(fixtureTrades().slice(800, 900));
    feed(enc, pub, more);
    const moreBtc = more.filter((t) => t.symbol === 'BTCUSDT');
    await btc.rec.until(() => btc.rec.trades().at(-1)?.tradeId === moreBtc.at(-1)?.tradeId, 'the last BTC trade');
    // Nothing decoded past the hole: the first 100 exactly, then exactly everything after the resync.
    const ids = btc.rec.trades().map((t) => t.tradeId as number);
    expect(ids.slice(0, 100)).toEqual(btcTrades.slice(0, 100).map((t) => t.tradeId));
    const truth = new Map([...btcTrades, ...moreBtc].map((t) => [t.tradeId, key(t)]));
    for (const t of btc.rec.trades()) expect(key(t)).toBe(truth.get(t.tradeId as number));
    expect(ids.slice(100)).toEqual(moreBtc.map((t) => t.tradeId));
    expect(btc.rec.events.map((e) => e.kind).filter((k) => k !== 'trade')).toEqual(['synced', 'lost', 'synced']);
  });

  it('never hands out garbage from foreign bytes on its subject: it says lost and resyncs', async () => {
    const trades = twoAssetStream(fixtureTrades().slice(0, 100));
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    const pub = await publisher(enc);
    const c = await consumer();
    feed(enc, pub, trades.slice(0, 50));
    const raw: NatsConnection = await connect({ servers: server.url });
    cleanups.push(() => raw.close());
    raw.publish('perp.trades.BTCUSDT', Buffer.from('ffffffffffffffffffffff', 'hex'));
    await raw.flush();
    await c.rec.until(() => c.rec.count('synced') >= 2, 'a resync after garbage');
    feed(enc, pub, trades.slice(50));
    await c.rec.until(() => c.rec.trades().at(-1)?.tradeId === trades.at(-1)?.tradeId, 'the last trade');
    const truth = new Set(trades.map(key));
    for (const t of c.rec.trades()) expect(truth.has(key(t))).toBe(true);
    const lost = c.rec.events.filter((e) => e.kind === 'lost');
    expect(lost).toHaveLength(1);
    expect(lost[0]).toMatchObject({ kind: 'lost', reason: 'undecodable' });
  });

  it('stays exact across a nats-server restart: consumers resync from a fresh snapshot', async () => {
    const trades = twoAssetStream(fixtureTrades().slice(0, 2000));
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    const pub = await publisher(enc);
    const a = await consumer();
    const b = await consumer({ symbols: ['ETHUSDT'] });
    feed(enc, pub, trades.slice(0, 1000));
    await a.rec.until(() => a.rec.trades().length >= 1000, 'the first 1000 trades');
    await server.stop();
    await waitFor(() => !pub.stats().connected, 10_000, 'the publisher to see the server go');
    // While the server is away the publisher counts frames as dropped instead of buffering them.
    feed(enc, pub, trades.slice(1000, 1100));
    expect(pub.drops()).toBe(100);
    await server.startAgain();
    await a.rec.until(() => a.rec.count('synced') >= 2, 'a resync after the restart (all)');
    await b.rec.until(() => b.rec.count('synced') >= 2, 'a resync after the restart (ETH)');
    await waitFor(() => pub.stats().connected, 10_000, 'the publisher to reconnect');
    feed(enc, pub, trades.slice(1100));
    await a.rec.until(() => a.rec.trades().at(-1)?.tradeId === trades.at(-1)?.tradeId, 'the last trade (all)');
    const lastEth = trades.filter((t) => t.symbol === 'ETHUSDT').at(-1);
    await b.rec.until(() => b.rec.trades().at(-1)?.tradeId === lastEth?.tradeId, 'the last ETH trade');

    expect(pub.stats().reconnects).toBeGreaterThanOrEqual(1);
    for (const r of [a.rec, b.rec]) {
      const truth = new Set(trades.map(key));
      for (const t of r.trades()) expect(truth.has(key(t))).toBe(true);
      expect(r.events.find((e) => e.kind === 'lost')).toMatchObject({ reason: 'reconnect' });
      // Everything published after both sides were back arrives, complete and in order.
      const tail = trades.slice(1100).filter((t) => r === a.rec || t.symbol === 'ETHUSDT').map(key);
      expect(r.trades().map(key).slice(-tail.length)).toEqual(tail);
    }
  });

  it('stays exact when its own NATS connection drops and reconnects while the feed goes on', async () => {
    const trades = twoAssetStream(fixtureTrades().slice(0, 750));
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    const pub = await publisher(enc);
    // The consumer reaches the server through a loopback proxy that the test can cut.
    const proxy = await CuttableProxy.start(server.port);
    cleanups.push(() => proxy.close());
    const c = await NatsConsumer.connect({ url: `nats://127.0.0.1:${proxy.port}`, snapshotTimeoutMs: 1000, retryMinMs: 50 });
    cleanups.push(() => c.close());
    const rec = new Recorder(c);
    await rec.until(() => rec.count('synced') === 1, 'the first snapshot');
    feed(enc, pub, trades.slice(0, 1000));
    await rec.until(() => rec.trades().length === 1000, 'the first 1000 trades');
    proxy.cut();
    // Published while the consumer is away: lost to it, and it must not decode past them.
    feed(enc, pub, trades.slice(1000, 1200));
    await rec.until(() => rec.count('synced') === 2, 'a resync after the reconnect');
    feed(enc, pub, trades.slice(1200));
    await rec.until(() => rec.trades().at(-1)?.tradeId === trades.at(-1)?.tradeId, 'the last trade');

    expect(rec.events.filter((e) => e.kind === 'lost')).toEqual([expect.objectContaining({ reason: 'reconnect' })]);
    expect(rec.events.filter((e) => e.kind === 'synced').map((e) => (e as { reason: string }).reason)).toEqual(['start', 'reconnect']);
    const got = rec.trades().map(key);
    expect(got.slice(0, 1000)).toEqual(trades.slice(0, 1000).map(key));
    expect(got.slice(-300)).toEqual(trades.slice(1200).map(key));
    expect(got).toHaveLength(1300); // the 200 published while it was away are gone, and said to be
    const truth = new Set(trades.map(key));
    for (const k of got) expect(truth.has(k)).toBe(true);
    expect(pub.drops()).toBe(0);
  });

  it('resyncs when a restarted forwarder takes over the prefix, even when sequence numbers line up', async () => {
    const trades = twoAssetStream(fixtureTrades().slice(0, 1000));
    const enc1 = new Encoder({ wire: 'v2', assets: ASSETS });
    const pub1 = await publisher(enc1);
    const c = await consumer();
    // 256 frames per asset: the new encoder's sequence numbers then match the old ones modulo 256.
    feed(enc1, pub1, trades.slice(0, 512));
    await c.rec.until(() => c.rec.trades().length === 512, "the first publisher's trades");
    await pub1.close();
    const enc2 = new Encoder({
      wire: 'v2',
      assets: [
        { symbol: 'BTCUSDT', refPrice: '60000.00', refQty: '1.000', priceScale: 2, qtyScale: 3 },
        { symbol: 'ETHUSDT', refPrice: '2000.00', refQty: '1.000', priceScale: 2, qtyScale: 3 },
      ],
    });
    const pub2 = await publisher(enc2);
    await c.rec.until(() => c.rec.count('synced') >= 2, 'a resync onto the new publisher');
    feed(enc2, pub2, trades.slice(512));
    await c.rec.until(() => c.rec.trades().length === trades.length, 'every trade');
    expect(c.rec.trades().map(key)).toEqual(trades.map(key));
    expect(c.rec.events.filter((e) => e.kind === 'lost')).toEqual([
      expect.objectContaining({ kind: 'lost', reason: 'restart' }),
    ]);
  });

  it('says when the feed goes quiet, and takes it up again when a forwarder answers', async () => {
    const trades = twoAssetStream(fixtureTrades().slice(0, 100));
    const enc1 = new Encoder({ wire: 'v2', assets: ASSETS });
    const pub1 = await publisher(enc1);
    const c = await consumer({ idleTimeoutMs: 500 });
    feed(enc1, pub1, trades.slice(0, 100));
    await c.rec.until(() => c.rec.trades().length === 100, 'the first trades');
    await pub1.close();
    await c.rec.until(() => c.rec.count('lost') === 1, 'the idle notice');
    expect(c.rec.events.find((e) => e.kind === 'lost')).toMatchObject({ reason: 'idle' });
    const enc2 = new Encoder({ wire: 'v2', assets: ASSETS });
    const pub2 = await publisher(enc2);
    await c.rec.until(() => c.rec.count('synced') === 2, 'a snapshot from the new forwarder');
    feed(enc2, pub2, trades.slice(100));
    await c.rec.until(() => c.rec.trades().length === 200, 'the later trades');
    expect(c.rec.trades().map(key)).toEqual(trades.map(key));
  });

  it('holds at most maxUnconfirmedBytes for a server that stops reading: drops and counts the rest, consumers see the hole, and resumes', async () => {
    const own = await NatsServer.start();
    cleanups.push(() => own.stop());
    const trades = twoAssetStream(fixtureTrades().slice(0, 1500));
    expect(trades.length).toBeGreaterThan(2500);
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    const bound = 32 * 1024;
    const pub = await NatsPublisher.connect({ url: own.url, encoder: enc, maxUnconfirmedBytes: bound });
    cleanups.push(() => pub.close());
    const c = await NatsConsumer.connect({ url: own.url, snapshotTimeoutMs: 1000, retryMinMs: 50, retryMaxMs: 200 });
    cleanups.push(() => c.close());
    const rec = new Recorder(c);
    await rec.until(() => rec.count('synced') >= 1, 'the first snapshot');
    feed(enc, pub, trades.slice(0, 200));
    await rec.until(() => rec.trades().length === 200, 'the first 200 trades');

    own.pause();
    // Popped first: a failing test must not leave the clients draining into a frozen server.
    cleanups.push(() => own.resume());
    const before = pub.stats();
    // Far more than the bound (a message is ~90 bytes).
    await feedPaced(enc, pub, trades.slice(200, 2000));
    const during = pub.stats();
    expect(during.stalls).toBe(1);
    expect(during.dropped).toBeGreaterThan(1000);
    expect(during.published - before.published).toBeLessThan(800);
    // What it holds for the server: the bound plus at most one batch.
    expect(during.unconfirmedBytes).toBeLessThanOrEqual(bound + 16 * 200);
    expect(during.published + during.dropped - before.published - before.dropped).toBe(1800);

    own.resume();
    await waitFor(() => pub.stats().unconfirmedBytes < bound, 10_000, 'the server to confirm what it was sent');
    // The first frames after the stall show the consumer the hole; it resyncs from a snapshot.
    feed(enc, pub, trades.slice(2000, 2016));
    await rec.until(() => rec.count('synced') >= 2, 'a resync after the stall');
    await feedPaced(enc, pub, trades.slice(2016));
    await rec.until(() => rec.trades().at(-1)?.tradeId === trades.at(-1)?.tradeId, 'the last trade after the stall');
    expect(pub.stats().stalls).toBe(1);
    // The consumer saw the hole and resynced; every trade it handed out is a true one, in order.
    const kinds = rec.events.map((e) => e.kind).filter((k) => k !== 'trade');
    expect(kinds.slice(0, 2)).toEqual(['synced', 'lost']);
    expect(kinds.at(-1)).toBe('synced');
    const truth = new Map(trades.map((t) => [`${t.symbol}:${t.tradeId}`, key(t)]));
    const got = rec.trades();
    for (const t of got) expect(key(t)).toBe(truth.get(`${t.symbol}:${t.tradeId}`));
    const ids = got.map((t) => trades.findIndex((x) => x.symbol === t.symbol && x.tradeId === t.tradeId));
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThan(ids[i - 1]);
    expect(got.length).toBeLessThan(trades.length);
  });

  it('makes a gap the pipeline could not write as a notice a hole in the asset sequence: consumers say lost and resync', async () => {
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    const pub = await publisher(enc);
    const c = await consumer();
    const source = Object.assign(new EventEmitter(), { start: async () => undefined, stop: async () => undefined });
    const pipeline = new Pipeline({ source, encoder: enc, transports: [pub], heartbeatMs: 0 });
    await pipeline.start();
    const t = (symbol: string, tradeId: number, price: string): Trade => oneTrade(symbol, tradeId, price, 1_723_161_256_000);
    // BTC's first trade (id 0) cannot be encoded, and a gap from id -1 cannot be written either:
    // without a signal, trade 1 would look like the next one after the snapshot's state.
    for (const x of [t('ETHUSDT', 5, '2500.10'), t('BTCUSDT', 0, '1e-8'), t('BTCUSDT', 1, '61800.40')]) source.emit('trade', x);
    pipeline.flush();
    expect(pipeline.rejected).toBe(1);
    await c.rec.until(() => c.rec.count('synced') >= 2, 'a resync after the hole');
    expect(c.rec.events.find((e) => e.kind === 'lost')).toMatchObject({ kind: 'lost', reason: 'lost', symbol: 'BTCUSDT' });
    source.emit('trade', t('BTCUSDT', 2, '61800.50'));
    pipeline.flush();
    await c.rec.until(() => c.rec.trades().some((x) => x.tradeId === 2), 'the trade after the resync');
    expect(c.rec.trades().map((x) => `${x.symbol} ${x.tradeId} ${x.price}`)).toEqual(['ETHUSDT 5 2500.10', 'BTCUSDT 2 61800.50']);
    await pipeline.stop();
  });

  it('counts its consumers', async () => {
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    const pub = await publisher(enc);
    expect(pub.consumers()).toBe(0);
    const one = await consumer();
    await consumer({ symbols: ['BTCUSDT'] });
    await waitFor(() => pub.consumers() === 2, 10_000, 'two consumers counted');
    await one.c.close();
    await waitFor(() => pub.consumers() === 1, 10_000, 'one consumer left');
  });

  it('fails clearly when no NATS server is there', async () => {
    const url = `nats://127.0.0.1:${await closedPort()}`;
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    for (const attempt of [
      () => NatsPublisher.connect({ url, encoder: enc, connectTimeoutMs: 1000 }),
      () => NatsConsumer.connect({ url, connectTimeoutMs: 1000 }),
    ]) {
      let caught: unknown;
      try {
        await attempt();
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(PerpSignalError);
      expect((caught as PerpSignalError).code).toBe('E_NATS_CONNECT');
      expect((caught as Error).message).toContain(url);
    }
  });

  it('ends with E_UNKNOWN_SYMBOL when the feed does not carry a symbol asked for', async () => {
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    await publisher(enc);
    const c = await NatsConsumer.connect({ url: server.url, symbols: ['BTCUSDT', 'SOLUSDT'] });
    cleanups.push(() => c.close());
    let caught: unknown;
    try {
      for await (const ev of c) expect(ev.kind).not.toBe('trade');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(PerpSignalError);
    expect(caught).toMatchObject({ code: 'E_UNKNOWN_SYMBOL' });
    expect((caught as Error).message).toContain('SOLUSDT');
  });

  it('refuses a prefix that is not a plain subject, and wire v1', async () => {
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    await expect(NatsPublisher.connect({ url: server.url, prefix: 'perp.>', encoder: enc })).rejects.toMatchObject({
      code: 'E_NATS_PREFIX',
    });
    await expect(NatsConsumer.connect({ url: server.url, prefix: 'a..b' })).rejects.toMatchObject({ code: 'E_NATS_PREFIX' });
    // v1 has no sequence numbers: a NATS consumer could not tell a lost message.
    const v1 = new Encoder({ wire: 'v1', assets: ASSETS.map(({ symbol, refPrice, refQty }) => ({ symbol, refPrice, refQty })) });
    await expect(NatsPublisher.connect({ url: server.url, encoder: v1 })).rejects.toMatchObject({ code: 'E_NATS_WIRE' });
  });
});

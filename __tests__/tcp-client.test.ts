import * as net from 'node:net';
import { Encoder } from '../ts/codec';
import type { TcpClient, TcpClientEvent, TcpClientOptions } from '../ts/clients/tcp';
import { TcpFanout, type TcpFanoutOptions } from '../ts/transports/tcp';
import { startClient, startFanout as startFanoutOn, useCleanups } from './helpers/fanout';
import { collect } from './helpers/net';
import { assetSpecs, expectSameTrades, makeTrades, TradeGen, until } from './helpers/stream';

const defer = useCleanups();

const startFanout = (opts: Partial<TcpFanoutOptions> = {}) => startFanoutOn(defer, 'v2', opts);
const client = (port: number, opts: TcpClientOptions = {}): TcpClient => startClient(defer, port, opts);

/** A TCP server on 127.0.0.1 that sends `bytes` to whoever connects. */
async function rawServer(bytes: Buffer): Promise<number> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    s.write(bytes);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  defer(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return (server.address() as net.AddressInfo).port;
}

async function firstEvents(c: TcpClient, n: number): Promise<TcpClientEvent[]> {
  const out: TcpClientEvent[] = [];
  for await (const ev of c) {
    out.push(ev);
    if (out.length === n) break;
  }
  return out;
}

describe('TcpClient', () => {
  it('batches() yields the decoded messages one array per read, the same as the message iterator', async () => {
    const { fanout, encoder, port } = await startFanout();
    const c = client(port, { reconnect: false });
    const seen: TcpClientEvent[] = [];
    let arrays = 0;
    const done = (async () => {
      for await (const batch of c.batches()) {
        arrays += 1;
        seen.push(...batch);
        if (seen.filter((e) => e.kind === 'trade').length === 20_000) break;
      }
    })();
    await until(() => fanout.stats().clients === 1, 'the client');
    const trades = makeTrades(20_000, 61);
    for (let i = 0; i < trades.length; i += 1000) fanout.publish(encoder.encodeBatch(trades.slice(i, i + 1000)));
    await done;
    expect(seen[0]).toMatchObject({ kind: 'connected', connection: 1, wire: 'v2' });
    const got = seen.filter((e) => e.kind === 'trade');
    expectSameTrades(got, trades);
    expect(arrays).toBeLessThan(got.length / 10);
    expect(c.stats()).toMatchObject({ connections: 1, messages: 20_000 });
  });

  it('stops reading its socket while its consumer is behind, so the backlog is the server\'s to bound', async () => {
    const { fanout, encoder, port } = await startFanout({ maxQueuedBytes: 64 * 1024 * 1024 });
    const c = client(port, { reconnect: false, highWaterMark: 1000 });
    const it = c[Symbol.asyncIterator]();
    expect((await it.next()).value).toMatchObject({ kind: 'connected' });
    // Nobody reads from here on: 40 batches of 5000 trades, about 2 MB.
    const gen = new TradeGen(62);
    const sent = [];
    for (let i = 0; i < 40; i++) {
      const batch = gen.next(5000);
      sent.push(...batch);
      fanout.publish(encoder.encodeBatch(batch));
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 100));
    const { messages, bytesIn } = c.stats();
    // What the client decoded and holds stays near its high-water mark (plus one socket read).
    expect(messages).toBeGreaterThan(1000);
    expect(messages).toBeLessThan(1000 + 20_000);
    expect(bytesIn).toBeLessThan(fanout.stats().bytesOut / 4);
    // Once the consumer reads again, everything arrives, exactly and in order.
    const got = [];
    for (let r = await it.next(); !r.done; r = await it.next()) {
      if (r.value.kind === 'trade') got.push(r.value);
      if (got.length === sent.length) break;
    }
    expectSameTrades(got, sent);
    await it.return?.(undefined);
  });

  it('v2: a connection silent for idleTimeoutMs is taken as dead and replaced', async () => {
    const { fanout, port } = await startFanout({ heartbeatMs: 0 });
    const c = client(port, { idleTimeoutMs: 150 });
    const events = await firstEvents(c, 3);
    expect(events.map((e) => e.kind)).toEqual(['connected', 'disconnected', 'connected']);
    expect(events[1]).toMatchObject({ reason: 'no data for 150 ms (dead feed?)' });
    expect(events[2]).toMatchObject({ connection: 2 });
    await until(() => fanout.stats().clients === 1, 'one client left');
  });

  it('a server that is not perp-signal (or says nothing) is a clear error, not a crash', async () => {
    const http = await rawServer(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const [a] = await firstEvents(client(http, { reconnect: false }), 1);
    expect(a).toMatchObject({ kind: 'disconnected', reason: 'frame longer than 1048576 bytes: not a perp-signal server?' });
    const other = Buffer.from('0500000048454c4c4f', 'hex'); // a frame "HELLO"
    const [b] = await firstEvents(client(await rawServer(other), { reconnect: false }), 1);
    expect(b).toMatchObject({ kind: 'disconnected', reason: 'first frame is not START: not a perp-signal server?' });
    const badHeader = Buffer.concat([Buffer.from('05000000', 'hex'), Buffer.from('START'), Buffer.from('03000000ffffff', 'hex')]);
    const [h] = await firstEvents(client(await rawServer(badHeader), { reconnect: false }), 1);
    expect(h).toMatchObject({ kind: 'disconnected' });
    expect((h as { reason: string }).reason).toMatch(/^bad header: /);
    const silent = await rawServer(Buffer.alloc(0));
    const [q] = await firstEvents(client(silent, { reconnect: false, connectTimeoutMs: 100 }), 1);
    expect(q).toMatchObject({ kind: 'disconnected', reason: 'no handshake within 100 ms: not a perp-signal server?' });
  });

  it('without a server: one disconnected event, then it keeps trying and connects when the server comes up', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const c = client(port);
    const seen = collect(c);
    await until(() => seen.events.length === 1, 'the first failure');
    expect(seen.events[0]).toMatchObject({ kind: 'disconnected', connection: 1 });
    expect((seen.events[0] as { reason: string }).reason).toMatch(/ECONNREFUSED/);
    await new Promise((r) => setTimeout(r, 300)); // several more attempts fail quietly
    expect(seen.events).toHaveLength(1);
    const encoder = new Encoder({ wire: 'v1', assets: assetSpecs() });
    const fanout = new TcpFanout({ host: '127.0.0.1', port, heartbeatMs: 0, encoder });
    defer(() => fanout.close());
    await fanout.listen();
    await until(() => seen.events.length === 2, 'the connection');
    expect(seen.events[1]).toMatchObject({ kind: 'connected', wire: 'v1' });
  });
});

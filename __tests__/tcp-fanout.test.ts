import { EventEmitter } from 'node:events';
import { Decoder, Encoder, frame } from '../ts/codec';
import type { TcpClient, TcpClientOptions } from '../ts/clients/tcp';
import { PerpSignalError } from '../ts/errors';
import { Pipeline } from '../ts/pipeline';
import { TcpFanout, type TcpFanoutOptions } from '../ts/transports/tcp';
import { startClient, startFanout as startFanoutOn, useCleanups } from './helpers/fanout';
import { collect, framesLength, publishStream, RawClient } from './helpers/net';
import { V1Oracle } from './oracle/v1-oracle';
import type { Trade } from '../ts/types';
import { assetSpecs, expectSameTrades, makeTrades, rng, TradeGen, until } from './helpers/stream';

const START_FRAME = Buffer.from('0500000053544152 54'.replace(/ /g, ''), 'hex');

const defer = useCleanups();

const startFanout = (wire: 'v1' | 'v2', opts: Partial<TcpFanoutOptions> = {}) => startFanoutOn(defer, wire, opts);
const client = (port: number, opts: TcpClientOptions = {}): TcpClient => startClient(defer, port, opts);

describe('TcpFanout handshake and bytes on the wire', () => {
  it('sends START, a header, then the published bytes unchanged, and ignores what the client sends', async () => {
    const { fanout, encoder, port } = await startFanout('v2');
    const raw = new RawClient(port);
    defer(() => raw.close());
    await raw.connected;
    raw.socket.write('GET / HTTP/1.1\r\n\r\n' + 'x'.repeat(100_000));
    await until(() => raw.frames().length >= 2, 'the handshake');
    expect(raw.data.subarray(0, 9)).toEqual(START_FRAME);
    const header = raw.frames()[1];
    expect(new Decoder(header).symbols).toEqual(['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
    const handshake = framesLength(raw.data, 2);

    const trades = makeTrades(2000, 7);
    const published: Buffer[] = [];
    await publishStream((ts) => encoder.encodeBatch(ts), (b) => (published.push(b), fanout.publish(b)), trades);
    const all = Buffer.concat(published);
    await until(() => raw.data.length >= handshake + all.length, 'all published bytes');
    expect(raw.data.subarray(handshake).equals(all)).toBe(true);
    const decoded = new Decoder(header).decodeFrames(raw.data.subarray(handshake));
    expectSameTrades(decoded, trades);
    expect(fanout.stats()).toMatchObject({ clients: 1, disconnectedSlow: 0, refused: 0 });
    expect(fanout.stats().bytesOut).toBe(handshake + all.length);
    expect(fanout.where).toBe(`127.0.0.1:${port}`);
  });

  it('writes the same bytes to every client that joined before the first trade', async () => {
    const { fanout, encoder, port } = await startFanout('v1');
    const raws = [new RawClient(port), new RawClient(port), new RawClient(port)];
    for (const r of raws) defer(() => r.close());
    await until(() => fanout.stats().clients === 3, 'three clients');
    const trades = makeTrades(5000, 3);
    let total = 0;
    await publishStream((ts) => encoder.encodeBatch(ts), (b) => ((total += b.length), fanout.publish(b)), trades);
    await until(() => raws.every((r) => r.frames().length === 2 + trades.length), 'every frame at every client');
    for (const r of raws.slice(1)) expect(r.data.equals(raws[0].data)).toBe(true);
    const decoder = new Decoder(raws[0].frames()[1]);
    const body = raws[0].data.subarray(framesLength(raws[0].data, 2));
    expect(body.length).toBe(total);
    const decoded = decoder.decodeFrames(body);
    expectSameTrades(decoded, trades);
  });
});

/** A consumer in a late-join run: how many trades it decoded, and a check of them. */
interface JoinReader {
  decoded(): number;
  check(want: readonly Trade[], what: string): void;
}

describe('late joiners', () => {
  // The library client, and (v1) a client as the original service's consumers are written: a
  // spec-following decoder with float running sums, reading raw bytes.
  const library = (port: number, wire: 'v1' | 'v2'): JoinReader => {
    const r = collect(client(port, { reconnect: false }));
    return {
      decoded: () => r.trades.length,
      check: (want, what) => {
        expect(r.events[0]).toMatchObject({ kind: 'connected', wire });
        expectSameTrades(r.trades, want, what);
      },
    };
  };
  const original = (port: number): JoinReader => {
    const raw = new RawClient(port);
    defer(() => raw.close());
    return {
      decoded: () => Math.max(0, raw.frames().length - 2),
      check: (want, what) => {
        const frames = raw.frames();
        expect(Buffer.from(frames[0]).toString('latin1')).toBe('START');
        const oracle = new V1Oracle(frames[1]);
        expect(frames.length - 2).toBe(want.length);
        want.forEach((w, k) => {
          const t = oracle.decode(frames[2 + k]);
          const ok =
            t.symbol === w.symbol &&
            t.maker === w.maker &&
            t.time === w.tradeTime &&
            Math.abs(t.price - Number(w.price)) < 5e-6 &&
            Math.abs(t.qty - Number(w.qty)) < 1e-9;
          if (!ok) throw new Error(`${what}: trade ${k} decoded as ${JSON.stringify(t)}, sent ${w.price} ${w.qty} at ${w.tradeTime}`);
        });
      },
    };
  };

  for (const wire of ['v1', 'v2'] as const) {
    const who = wire === 'v1' ? 'library and original-style clients' : 'clients';
    it(`${wire}: ${who} joining at random points of a 100,000-trade stream decode exactly from there on`, async () => {
      const { fanout, encoder, port } = await startFanout(wire);
      const trades = makeTrades(100_000, wire === 'v1' ? 11 : 12);
      const rand = rng(wire === 'v1' ? 101 : 102);
      const count = wire === 'v1' ? 12 : 8;
      const joinAt = Array.from({ length: count }, () => Math.floor(rand() * 95_000)).sort((a, b) => a - b);
      joinAt[0] = 0; // one client sees the whole stream
      let published = 0;
      const joinedAt = new Map<number, number>();
      fanout.on('connect', (info: { id: number }) => joinedAt.set(info.id, published));
      const readers: JoinReader[] = [];
      const pending = [...joinAt];
      const startDue = (): void => {
        // One connection in flight at a time, so the i-th reader is the i-th connection accepted.
        if (pending.length && pending[0] <= published && joinedAt.size === readers.length) {
          pending.shift();
          readers.push(wire === 'v1' && readers.length % 2 === 1 ? original(port) : library(port, wire));
        }
      };
      startDue();
      await until(() => fanout.stats().clients === 1, 'the first client');
      await publishStream(
        (ts) => encoder.encodeBatch(ts),
        (b) => fanout.publish(b),
        trades,
        { rand, onBatch: (n) => ((published = n), startDue()) },
      );
      expect(readers).toHaveLength(joinAt.length);
      await until(() => fanout.stats().clients === joinAt.length, 'every client connected');
      const starts = [...joinedAt.values()];
      expect(starts).toHaveLength(joinAt.length);
      // Each client has joined; wait for each to have decoded the rest of the stream.
      await until(
        () => readers.every((r, i) => r.decoded() >= trades.length - starts[i]),
        'every client to decode the rest of the stream',
        30_000,
      );
      readers.forEach((r, i) => r.check(trades.slice(starts[i]), `client joined at trade ${starts[i]}`));
      // Join points really are spread over the stream.
      expect(new Set(starts).size).toBeGreaterThanOrEqual(joinAt.length - 1);
      expect(Math.max(...starts)).toBeGreaterThan(50_000);
    });
  }
});

describe('slow consumers', () => {
  it('disconnects a client that stops reading, with a logged reason and a counter, while others decode exactly', async () => {
    const warnings: { msg: string; fields?: Record<string, unknown> }[] = [];
    const logger = {
      debug: () => undefined,
      info: () => undefined,
      warn: (msg: string, fields?: Record<string, unknown>) => warnings.push({ msg, fields }),
      error: () => undefined,
    };
    const maxQueuedBytes = 256 * 1024;
    const { fanout, encoder, port } = await startFanout('v2', { maxQueuedBytes, logger });
    const stalled = new RawClient(port, { read: false });
    defer(() => stalled.close());
    const good = [collect(client(port, { reconnect: false })), collect(client(port, { reconnect: false }))];
    await until(() => fanout.stats().clients === 3, 'three clients');
    const disconnects: { reason: string }[] = [];
    fanout.on('disconnect', (d: { reason: string }) => disconnects.push(d));

    // Enough to fill the kernel's socket buffers and then the bound; publishing goes on a while
    // after the stalled client is dropped, to show the others are unaffected.
    const gen = new TradeGen(5);
    const sent: Trade[] = [];
    let droppedAt = 0;
    // Bounded: 400 batches of 5000 trades at most.
    for (let i = 0; i < 400 && !(droppedAt && sent.length >= droppedAt + 20_000); i++) {
      const batch = gen.next(5000);
      fanout.publish(encoder.encodeBatch(batch));
      sent.push(...batch);
      if (!droppedAt && fanout.stats().disconnectedSlow > 0) droppedAt = sent.length;
      await new Promise((r) => setImmediate(r));
    }
    expect(droppedAt).toBeGreaterThan(0);
    const expected = sent;
    await until(() => good.every((g) => g.trades.length === expected.length), 'the reading clients to get everything', 30_000);
    // The stalled client learns it was dropped as soon as it reads again.
    stalled.socket.resume();
    await until(() => stalled.ended, 'the stalled client to see the end of its connection');
    expect(fanout.stats()).toMatchObject({ clients: 2, disconnectedSlow: 1 });
    expect(disconnects).toEqual([expect.objectContaining({ reason: 'slow' })]);
    expect(warnings).toEqual([
      expect.objectContaining({ fields: expect.objectContaining({ maxQueuedBytes, queuedBytes: expect.any(Number) }) }),
    ]);
    expect(warnings[0].msg).toMatch(/did not read fast enough/);
    for (const g of good) expectSameTrades(g.trades, expected, 'reading client');
    // ~3 s alone; under CI load it once ran past jest's 60 s, which hid which wait was slow. Its own
    // waits (10 + 30 + 10 s at most) then report themselves.
  }, 120_000);
});

describe('max clients, refusal and reconnects', () => {
  it('refuses a client past max-clients with a clear message, and lets it in once a slot is free', async () => {
    const { fanout, port } = await startFanout('v2', { maxClients: 2 });
    const a = collect(client(port));
    const bClient = client(port);
    const b = collect(bClient);
    await until(() => fanout.stats().clients === 2, 'two clients');
    const c = collect(client(port));
    await until(() => c.events.length > 0, 'the third client to hear back');
    expect(c.events[0]).toMatchObject({ kind: 'disconnected', refused: true });
    expect((c.events[0] as { reason: string }).reason).toMatch(/full: 2 clients connected \(max-clients\)/);
    expect(fanout.stats().refused).toBeGreaterThanOrEqual(1);
    expect(fanout.stats().clients).toBe(2);
    bClient.close();
    await until(() => c.events.some((e) => e.kind === 'connected'), 'the refused client to get in');
    expect(a.events[0]).toMatchObject({ kind: 'connected' });
    expect(b.events[0]).toMatchObject({ kind: 'connected' });
  });

  it('a client reconnects after the server restarts, gets a new handshake and decodes the new stream exactly', async () => {
    const first = await startFanout('v1');
    const c = collect(client(first.port));
    await until(() => first.fanout.stats().clients === 1, 'the client');
    const before = makeTrades(3000, 21);
    await publishStream((ts) => first.encoder.encodeBatch(ts), (b) => first.fanout.publish(b), before);
    await until(() => c.trades.length === before.length, 'the first stream');
    await first.fanout.close();
    await until(() => c.events.some((e) => e.kind === 'disconnected'), 'the disconnect');

    // A new server on the same port, with a new encoder whose state differs from the old one.
    const encoder = new Encoder({ wire: 'v1', assets: assetSpecs(), refTime: 1_723_100_500_000 });
    const fanout = new TcpFanout({ host: '127.0.0.1', port: first.port, heartbeatMs: 0, encoder });
    defer(() => fanout.close());
    const after = makeTrades(3000, 22, undefined, 1_723_100_600_000);
    encoder.encodeBatch(after.slice(0, 500)); // state moved on before the client is back
    await fanout.listen();
    await until(() => fanout.stats().clients === 1, 'the reconnect', 10_000);
    await publishStream((ts) => encoder.encodeBatch(ts), (b) => fanout.publish(b), after.slice(500));
    await until(() => c.trades.length === before.length + after.length - 500, 'the second stream');
    const kinds = c.events.filter((e) => e.kind !== 'trade').map((e) => e.kind);
    expect(kinds).toEqual(['connected', 'disconnected', 'connected']);
    expect(c.events.find((e) => e.kind === 'disconnected')).toMatchObject({ reason: 'server closed the connection' });
    expectSameTrades(c.trades, [...before, ...after.slice(500)]);
  });
});

describe('heartbeats', () => {
  it('v2: sends a heartbeat when nothing was sent for heartbeatMs', async () => {
    const { fanout, encoder, port } = await startFanout('v2', { heartbeatMs: 50 });
    const c = collect(client(port));
    await until(() => c.events.some((e) => e.kind === 'connected'), 'connect');
    await publishStream((ts) => encoder.encodeBatch(ts), (b) => fanout.publish(b), makeTrades(10, 1));
    const t0 = Date.now();
    await until(() => c.events.filter((e) => e.kind === 'heartbeat').length >= 3, 'three heartbeats', 2000);
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(3 * 50 - 20);
    const hb = c.events.find((e) => e.kind === 'heartbeat') as { time: number };
    expect(Math.abs(hb.time - Date.now())).toBeLessThan(2000);
  });

  it('v1: sends nothing when idle (v1 has no heartbeat frame)', async () => {
    const { port } = await startFanout('v1', { heartbeatMs: 20 });
    const raw = new RawClient(port);
    defer(() => raw.close());
    await until(() => raw.frames().length >= 2, 'the handshake');
    await new Promise((r) => setTimeout(r, 200));
    expect(raw.frames()).toHaveLength(2);
  });
});

describe('listen and close', () => {
  it('a busy port is a clear E_ADDR_IN_USE error', async () => {
    const { port } = await startFanout('v2');
    const other = new TcpFanout({ host: '127.0.0.1', port, encoder: new Encoder({ wire: 'v2', assets: assetSpecs() }) });
    const err = await other.listen().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PerpSignalError);
    expect(err).toMatchObject({ code: 'E_ADDR_IN_USE' });
    expect((err as Error).message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}.*already in use.*--port`));
  });

  it('rejects a bad port and bad limits with E_USAGE', () => {
    const encoder = new Encoder({ wire: 'v2', assets: assetSpecs() });
    expect(() => new TcpFanout({ port: 70000, encoder })).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    expect(() => new TcpFanout({ port: 1, maxClients: 0, encoder })).toThrow(/maxClients/);
    expect(() => new TcpFanout({ port: 1, maxQueuedBytes: -1, encoder })).toThrow(/maxQueuedBytes/);
  });

  it('close() flushes what is queued to every client, then closes them and refuses new ones', async () => {
    const { fanout, encoder, port } = await startFanout('v2', { maxQueuedBytes: 64 * 1024 * 1024 });
    const readers = [collect(client(port, { reconnect: false })), collect(client(port, { reconnect: false }))];
    await until(() => fanout.stats().clients === 2, 'two clients');
    const trades = makeTrades(50_000, 9);
    fanout.publish(encoder.encodeBatch(trades));
    fanout.publish(frame(encoder.gap({ symbol: 'BTCUSDT', lastId: 1, nextId: 5, reason: 'jump' })!));
    const closed = fanout.close();
    const late = new RawClient(port);
    await expect(late.connected).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await closed;
    await Promise.all(readers.map((r) => r.done));
    for (const r of readers) {
      expect(r.trades).toHaveLength(trades.length);
      const tail = r.events.slice(-2);
      expect(tail[0]).toMatchObject({ kind: 'gap', symbol: 'BTCUSDT', lastId: 1, nextId: 5 });
      expect(tail[1]).toMatchObject({ kind: 'disconnected' });
    }
    expect(fanout.stats().clients).toBe(0);
  });
});

describe('a failure for one client', () => {
  it('an encoder that cannot give a late-join state drops that connection, not the server', async () => {
    const encoder = new Encoder({ wire: 'v1', assets: assetSpecs() });
    let failNext = true;
    const flaky = {
      join: () => {
        if (failNext) {
          failNext = false;
          throw new Error('no state');
        }
        return encoder.join();
      },
      heartbeat: (now: number) => encoder.heartbeat(now),
    };
    const errors: string[] = [];
    const logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: (m: string) => errors.push(m) };
    const fanout = new TcpFanout({ host: '127.0.0.1', port: 0, heartbeatMs: 0, encoder: flaky, logger });
    defer(() => fanout.close());
    const { port } = await fanout.listen();
    const first = new RawClient(port);
    defer(() => first.close());
    await until(() => first.ended, 'the first connection to be dropped');
    expect(first.data.length).toBe(0);
    expect(errors).toEqual(['tcp client dropped: no late-join state for it']);
    const c = collect(client(port, { reconnect: false }));
    await until(() => c.events.length > 0, 'the next client');
    expect(c.events[0]).toMatchObject({ kind: 'connected', wire: 'v1' });
  });
});

describe('close with a stalled client', () => {
  it('does not hang on a client that never reads: it is cut off after a grace period', async () => {
    const { fanout, encoder, port } = await startFanout('v2', { maxQueuedBytes: 64 * 1024 * 1024 });
    const stalled = new RawClient(port, { read: false });
    defer(() => stalled.close());
    await until(() => fanout.stats().clients === 1, 'the client');
    // About 10 MB, more than the kernel buffers take, so close() has bytes it cannot flush (the
    // bytes' meaning does not matter here: nobody decodes them).
    const batch = encoder.encodeBatch(makeTrades(10_000, 81));
    for (let i = 0; i < 100; i++) fanout.publish(batch);
    // A turn's frames are written at its end.
    await new Promise((r) => setImmediate(r));
    expect(fanout.stats().bytesOut).toBeGreaterThan(8 * 1024 * 1024);
    const t0 = Date.now();
    await fanout.close();
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1500);
    expect(took).toBeLessThan(4000);
    expect(fanout.stats().clients).toBe(0);
  });
});

describe('as the pipeline\'s transport', () => {
  it('carries the pipeline\'s trades, gaps and heartbeats (v2) with no sequence loss', async () => {
    const { fanout, encoder, port } = await startFanout('v2', { heartbeatMs: 0 });
    const source = Object.assign(new EventEmitter(), { start: async () => undefined, stop: async () => undefined });
    const pipeline = new Pipeline({ source, encoder, transports: [fanout], heartbeatMs: 40 });
    await pipeline.start();
    defer(() => pipeline.stop());
    const c = collect(client(port));
    await until(() => fanout.stats().clients === 1, 'the client');
    const trades = makeTrades(3000, 71);
    for (let i = 0; i < 2000; i++) source.emit('trade', trades[i]);
    await new Promise((r) => setImmediate(r));
    source.emit('gap', { symbol: 'SOLUSDT', lastId: 10, nextId: 12, reason: 'reconnect' });
    for (let i = 2000; i < trades.length; i++) source.emit('trade', trades[i]);
    await until(() => c.trades.length === trades.length, 'every trade');
    await until(() => c.events.some((e) => e.kind === 'heartbeat'), 'a heartbeat while quiet', 2000);
    expectSameTrades(c.trades, trades);
    const kinds = c.events.filter((e) => e.kind !== 'trade' && e.kind !== 'heartbeat').map((e) => e.kind);
    expect(kinds).toEqual(['connected', 'gap']);
    const gapAt = c.events.findIndex((e) => e.kind === 'gap');
    expect(c.events.slice(0, gapAt).filter((e) => e.kind === 'trade')).toHaveLength(2000);
    expect(fanout.consumers()).toBe(1);
    expect(fanout.drops()).toBe(0);
  });
});

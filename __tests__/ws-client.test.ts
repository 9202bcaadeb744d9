/**
 * The builtin WebSocket client (ts/source/rfc6455.ts + ws-handshake.ts, the default since it costs
 * ~0.3 µs less per message than `ws`): through BinanceSource against a byte-exact server on a real
 * socket (splits, fragments, pings, closes, protocol errors, a bad handshake), against the local
 * exchange next to the `ws` client, over TLS from the CLI, and the frame reader at every split point.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { FrameReader, type FrameSink } from '../ts/source/rfc6455';
import { RawWsServer, serverFrame, tradeJson, type RawConn } from './helpers/raw-ws';
import { Harness, waitFor } from './source.helpers';
import { killChildren, runCli, spawnCli, waitForOutput } from './support/cli';

jest.setTimeout(30_000);

const h = new Harness();
const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  killChildren();
  await h.cleanup();
  for (const s of servers.splice(0)) await s.close();
});

/** A raw stream server for the WebSocket and the local exchange for REST (reference data). */
async function rawSetup(opts: ConstructorParameters<typeof RawWsServer>[0] = {}) {
  const { addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 0 });
  const raw = new RawWsServer(opts);
  servers.push(raw);
  const wsUrl = await raw.listen();
  const rec = h.source({ ...addr, wsUrl }, { watchdogMs: 0, pingIntervalMs: 0 });
  return { raw, rec };
}

const price = (id: number): string => (61000 + id / 10).toFixed(1);

describe('builtin WebSocket client, through BinanceSource', () => {
  it('reads frames split at any byte, 16- and 64-bit lengths and fragmented messages, and answers pings with the same payload', async () => {
    const { raw, rec } = await rawSetup();
    raw.onConnect = (c: RawConn) => {
      void (async () => {
        // 1-5: whole frames, written in 7-byte pieces so headers and payloads straddle reads.
        const small = Buffer.concat([1, 2, 3, 4, 5].map((id) => serverFrame(0x1, tradeJson(id, price(id)))));
        await c.writeSlowly(small, 7);
        // 6: a text message in three fragments with a ping between them.
        const six = Buffer.from(tradeJson(6, price(6)));
        c.write(serverFrame(0x1, six.subarray(0, 40), { fin: false }));
        c.write(serverFrame(0x9, 'are you there'));
        c.write(serverFrame(0x0, six.subarray(40, 90), { fin: false }));
        await c.writeSlowly(serverFrame(0x0, six.subarray(90)), 3);
        // 7: a 64-bit length (JSON padded with whitespace past 64 KiB), then 8 and 9 in one write.
        c.write(serverFrame(0x1, tradeJson(7, price(7), '0.010', 70_000)));
        c.write(Buffer.concat([8, 9].map((id) => serverFrame(0x1, tradeJson(id, price(id))))));
      })();
    };
    await rec.source.start();
    await waitFor(() => rec.trades.length >= 9, 10_000, 'nine trades');
    expect(rec.ids()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(rec.trades.map((t) => t.price)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map(price));
    expect(rec.trades.every((t) => t.qty === '0.010')).toBe(true);
    expect(rec.gaps).toEqual([]);
    expect(rec.reconnectReasons).toEqual([]);
    const c = raw.conns[0];
    await waitFor(() => c.frames.some((f) => f.opcode === 0xa), 5000, 'the pong');
    const pong = c.frames.find((f) => f.opcode === 0xa);
    expect(pong).toEqual({ fin: true, opcode: 0xa, masked: true, payload: Buffer.from('are you there') });
    // Every client frame is masked (RFC 6455 5.1).
    expect(c.frames.every((f) => f.masked)).toBe(true);
    expect(c.path).toBe('/stream?streams=btcusdt@trade');
  });

  it('fails a connection that breaks the protocol (masked server frame), says why, and reconnects', async () => {
    const { raw, rec } = await rawSetup();
    raw.onConnect = (c, n) => {
      if (n === 0) {
        c.write(serverFrame(0x1, tradeJson(1, price(1))));
        c.write(serverFrame(0x1, tradeJson(2, price(2)), { masked: true }));
      } else c.write(Buffer.concat([2, 3].map((id) => serverFrame(0x1, tradeJson(id, price(id))))));
    };
    await rec.source.start();
    await waitFor(() => rec.trades.length >= 3, 10_000, 'trades after the reconnect');
    expect(rec.reconnectReasons[0]).toMatch(/protocol error: the server sent a masked frame/);
    expect(rec.ids()).toEqual([1, 2, 3]);
    // The broken connection was closed with 1002 (protocol error) before the socket went.
    const close = raw.conns[0].frames.find((f) => f.opcode === 0x8);
    expect(close?.payload.readUInt16BE(0)).toBe(1002);
  });

  it('refuses a frame with reserved bits set (no extension was negotiated)', async () => {
    const { raw, rec } = await rawSetup();
    raw.onConnect = (c, n) => {
      if (n === 0) c.write(serverFrame(0x1, tradeJson(1, price(1)), { rsv: 4 }));
      else c.write(serverFrame(0x1, tradeJson(1, price(1))));
    };
    await rec.source.start();
    await waitFor(() => rec.trades.length >= 1, 10_000, 'a trade after the reconnect');
    expect(rec.reconnectReasons[0]).toMatch(/protocol error: reserved bits set/);
    expect(rec.ids()).toEqual([1]);
  });

  it('refuses a handshake with a wrong Sec-WebSocket-Accept, then retries', async () => {
    const { raw, rec } = await rawSetup({ badAcceptOn: [0] });
    raw.onConnect = (c, n) => {
      if (n > 0) c.write(serverFrame(0x1, tradeJson(1, price(1))));
    };
    await rec.source.start();
    await waitFor(() => rec.trades.length >= 1, 10_000, 'a trade on the second connection');
    expect(rec.reconnectReasons[0]).toMatch(/open failed: handshake refused: the server answered with a wrong Sec-WebSocket-Accept/);
  });

  it("reports the peer's close frame with its code and reason, echoes it, and reconnects", async () => {
    const { raw, rec } = await rawSetup();
    raw.onConnect = (c, n) => {
      c.write(serverFrame(0x1, tradeJson(n + 1, price(n + 1))));
      if (n === 0) {
        const p = Buffer.concat([Buffer.from([0x03, 0xe9]), Buffer.from('going away')]);
        c.write(serverFrame(0x8, p));
      }
    };
    await rec.source.start();
    await waitFor(() => rec.trades.length >= 2, 10_000, 'a trade on the second connection');
    expect(rec.reconnectReasons[0]).toMatch(/closed by peer \(code 1001, going away\)/);
    const echo = raw.conns[0].frames.find((f) => f.opcode === 0x8);
    expect(echo?.payload.readUInt16BE(0)).toBe(1001);
    expect(rec.ids()).toEqual([1, 2]);
  });
});

describe('builtin and ws clients', () => {
  it('deliver the same trades, exactly, from the local exchange', async () => {
    const { addr } = await h.exchange({ symbols: ['BTCUSDT', 'ETHUSDT'], rate: 2000, tickMs: 5 });
    const a = h.source(addr, { symbols: ['BTCUSDT', 'ETHUSDT'], wsClient: 'builtin' });
    const b = h.source(addr, { symbols: ['BTCUSDT', 'ETHUSDT'], wsClient: 'ws' });
    await Promise.all([a.source.start(), b.source.start()]);
    await waitFor(() => a.trades.length > 500 && b.trades.length > 500, 10_000, 'trades on both');
    await Promise.all([a.source.stop(), b.source.stop()]);
    const key = (t: { symbol: string; tradeId: number }): string => `${t.symbol}#${t.tradeId}`;
    const inB = new Map(b.trades.map((t) => [key(t), t]));
    const common = a.trades.filter((t) => inB.has(key(t)));
    expect(common.length).toBeGreaterThan(300);
    for (const t of common) {
      const u = inB.get(key(t));
      expect([t.price, t.qty, t.tradeTime, t.eventTime, t.maker, t.type]).toEqual([u?.price, u?.qty, u?.tradeTime, u?.eventTime, u?.maker, u?.type]);
    }
    expect(a.gaps).toEqual([]);
    expect(b.gaps).toEqual([]);
  });
});

describe('--ws-client', () => {
  it('is listed with its default, and a wrong value exits 2 naming the choices', async () => {
    const help = await runCli(['tcp', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--ws-client[^[]*\[choices: "builtin", "ws"\] \[default: "builtin"\]/);
    const bad = await runCli(['--assets', 'BTCUSDT', 'tcp', '--ws-client', 'bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/ws-client[\s\S]*bogus[\s\S]*builtin/);
  });
});

/** A self-signed certificate for 127.0.0.1, kept with the tests (see its README). */
const tlsDir = path.join(__dirname, 'fixtures', 'tls');
const cert = path.join(tlsDir, 'cert.pem');
const tlsOpts = (): tls.TlsOptions => ({ key: fs.readFileSync(path.join(tlsDir, 'key.pem')), cert: fs.readFileSync(cert) });

describe('builtin client over TLS (wss://)', () => {
  it('handshakes and streams through a TLS endpoint whose certificate the process trusts', async () => {
    const { addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 200, tickMs: 5 });
    // TLS in front of the local exchange: the client speaks wss://, the exchange plain ws://.
    const sockets = new Set<net.Socket>();
    const proxy = tls.createServer(tlsOpts(), (s) => {
      const up = net.connect(addr.port, '127.0.0.1');
      sockets.add(s).add(up);
      s.pipe(up).pipe(s);
      s.on('error', () => up.destroy());
      up.on('error', () => s.destroy());
    });
    servers.push({
      close: () => {
        for (const s of sockets) s.destroy();
        return new Promise<void>((r) => proxy.close(() => r()));
      },
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as net.AddressInfo).port;
    const run = spawnCli(['watch', '--assets', 'BTCUSDT', '--json', '--ws-url', `wss://127.0.0.1:${port}/public`, '--rest-url', addr.restUrl], {
      NODE_EXTRA_CA_CERTS: cert,
    });
    await waitForOutput(run, /("tradeId":\d+[^\n]*\n[^\n]*){5}/);
    const lines = run.stdout().trim().split('\n').map((l) => JSON.parse(l) as { symbol: string; tradeId: number });
    expect(lines.every((l) => l.symbol === 'BTCUSDT')).toBe(true);
    for (let i = 1; i < lines.length; i++) expect(lines[i].tradeId).toBe(lines[i - 1].tradeId + 1);
    run.child.kill('SIGINT');
    expect((await run.exited).code).toBe(0);
  });

  it('refuses a certificate the process does not trust, saying so', async () => {
    const { addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 0 });
    const proxy = tls.createServer(tlsOpts(), (s) => s.on('error', () => undefined));
    servers.push({ close: () => new Promise<void>((r) => proxy.close(() => r())) });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const port = (proxy.address() as net.AddressInfo).port;
    const rec = h.source({ ...addr, wsUrl: `wss://127.0.0.1:${port}/public` }, { backoffBaseMs: 50 });
    // start() resolves once a connection is open, which never happens here: stop() ends it.
    const started = rec.source.start();
    await waitFor(() => rec.reconnectReasons.length > 0, 10_000, 'a refused connection');
    await rec.source.stop();
    await started;
    expect(rec.reconnectReasons[0]).toMatch(/open failed: .*self[- ]signed certificate/i);
    expect(rec.trades).toEqual([]);
  });
});

describe('FrameReader', () => {
  type Ev = [string, ...unknown[]];
  const sinkOf = (evs: Ev[]): FrameSink => ({
    text: (b, s, e) => evs.push(['text', b.toString('utf8', s, e)]),
    binary: (n) => evs.push(['binary', n]),
    ping: (p) => evs.push(['ping', p.toString()]),
    pong: (p) => evs.push(['pong', p.toString()]),
    close: (code, reason) => evs.push(['close', code, reason]),
    error: (code, why) => evs.push(['error', code, why]),
  });
  const read = (chunks: Buffer[], max = 1 << 20): Ev[] => {
    const evs: Ev[] = [];
    const r = new FrameReader(sinkOf(evs), max);
    for (const c of chunks) r.push(Buffer.from(c));
    return evs;
  };
  const stream = Buffer.concat([
    serverFrame(0x1, 'a'),
    serverFrame(0x1, 'x'.repeat(300)),
    serverFrame(0x1, 'he', { fin: false }),
    serverFrame(0x9, 'p1'),
    serverFrame(0x0, 'll', { fin: false }),
    serverFrame(0x0, 'o', { fin: true }),
    serverFrame(0x2, Buffer.alloc(5)),
    serverFrame(0xa, 'p2'),
    serverFrame(0x1, 'y'.repeat(70_000)),
    serverFrame(0x1, ''),
    serverFrame(0x8, Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from('bye')])),
    serverFrame(0x1, 'after the close: never read'),
  ]);
  const expected: Ev[] = [
    ['text', 'a'],
    ['text', 'x'.repeat(300)],
    ['ping', 'p1'],
    ['text', 'hello'],
    ['binary', 5],
    ['pong', 'p2'],
    ['text', 'y'.repeat(70_000)],
    ['text', ''],
    ['close', 1000, 'bye'],
  ];

  it('gives the same messages however the stream is split in two', () => {
    expect(read([stream])).toEqual(expected);
    for (let k = 0; k <= stream.length; k += k < 400 ? 1 : 997) {
      expect(read([stream.subarray(0, k), stream.subarray(k)])).toEqual(expected);
    }
  });

  it('gives the same messages read a byte at a time and in odd-sized pieces', () => {
    const head = stream.subarray(0, 600);
    const bytes: Buffer[] = [];
    for (let i = 0; i < head.length; i++) bytes.push(head.subarray(i, i + 1));
    bytes.push(stream.subarray(600));
    expect(read(bytes)).toEqual(expected);
    for (const size of [3, 13, 126, 4093]) {
      const pieces: Buffer[] = [];
      for (let o = 0; o < stream.length; o += size) pieces.push(stream.subarray(o, o + size));
      expect(read(pieces)).toEqual(expected);
    }
  });

  it.each([
    ['a masked frame', serverFrame(0x1, 'x', { masked: true }), 1002, /masked/],
    ['reserved bits', serverFrame(0x1, 'x', { rsv: 1 }), 1002, /reserved bits/],
    ['a fragmented ping', serverFrame(0x9, 'x', { fin: false }), 1002, /fragmented control/],
    ['a 126-byte ping', serverFrame(0x9, 'x'.repeat(126)), 1002, /control frame \(at most 125\)/],
    ['a 1-byte close', serverFrame(0x8, 'x'), 1002, /1-byte payload/],
    ['a stray continuation', serverFrame(0x0, 'x'), 1002, /continuation frame outside/],
    ['a new message mid-fragment', Buffer.concat([serverFrame(0x1, 'x', { fin: false }), serverFrame(0x1, 'y')]), 1002, /before the fragmented one ended/],
    ['opcode 3', serverFrame(0x3, 'x'), 1002, /unknown opcode 0x3/],
    ['opcode 0xb', serverFrame(0xb, 'x'), 1002, /unknown control opcode 0xb/],
    ['a frame over the limit', serverFrame(0x1, 'x'.repeat(151)), 1009, /151-byte frame is over the 150-byte limit/],
    ['fragments over the limit', Buffer.concat([serverFrame(0x1, 'x'.repeat(80), { fin: false }), serverFrame(0x0, 'x'.repeat(80))]), 1009, /160-byte message/],
  ])('fails the connection on %s, and reads nothing after it', (_what, bytes, code, why) => {
    const stream = Buffer.concat([serverFrame(0x1, 'ok'), bytes, serverFrame(0x1, 'later')]);
    const want = [['text', 'ok'], ['error', code, expect.stringMatching(why)]];
    expect(read([stream], 150)).toEqual(want);
    // The same when the bad frame's header arrives a byte at a time (completed from later reads).
    const bytewise = Array.from(stream, (_b, i) => stream.subarray(i, i + 1));
    expect(read(bytewise, 150)).toEqual(want);
  });
});

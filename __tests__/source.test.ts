/** BinanceSource against the local exchange, over real sockets on 127.0.0.1. */
import * as zlib from 'node:zlib';
import * as fs from 'node:fs';
import { BinanceSource, PerpSignalError, resolveApiKey, resolveEndpoints, DEFAULT_REST_URL, DEFAULT_WS_URL } from '../ts/index';
import { meanDecimal } from '../ts/source/decimal';
import { Backoff } from '../ts/source';
import { Harness, expectHolesAnnounced, fixtureFile, waitFor } from './source.helpers';
import type { TradePayload } from '../ts/exchange/generator';

const h = new Harness();
afterEach(() => h.cleanup());

/** A fixture frame's `data` has Binance's trade payload shape, as the local exchange sends it. */
type FixtureTrade = TradePayload;

function readFixture(): FixtureTrade[] {
  const text = zlib.gunzipSync(fs.readFileSync(fixtureFile())).toString('utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l.slice(l.indexOf(' ') + 1)) as { data: FixtureTrade }).data);
}

describe('BinanceSource over the local exchange', () => {
  it('delivers every real fixture trade with exact strings, ids, times and flags', async () => {
    const fixture = readFixture();
    expect(fixture).toHaveLength(21313);
    const { ex, addr } = await h.exchange({ replay: fixtureFile(), speed: 0 });
    const rec = h.source(addr, { symbols: ['BTCUSDT'] });
    const warnings: string[] = [];
    rec.source.on('warning', (w) => warnings.push(w.code));
    // Before the replay has run the exchange has no trades: no reference price, a warning, no zero.
    const [before] = await rec.source.prepare();
    expect(before).toEqual({ symbol: 'BTCUSDT', tickSize: '0.10', stepSize: '0.001' });
    expect(before.refPrice).toBeUndefined();
    expect(warnings).toEqual(['W_NO_REFERENCE']);

    let ended = false;
    ex.on('replayEnd', () => (ended = true));
    const wallBefore = BigInt(Date.now()) * 1_000_000n;
    await rec.source.start();
    await waitFor(() => rec.trades.length >= fixture.length, 20_000, 'all fixture trades');
    expect(ended).toBe(true);
    expect(rec.gaps).toEqual([]);
    expect(rec.trades).toHaveLength(fixture.length);
    for (let i = 0; i < fixture.length; i++) {
      const f = fixture[i];
      const t = rec.trades[i];
      if (t.price !== f.p || t.qty !== f.q || t.tradeId !== f.t || t.tradeTime !== f.T || t.eventTime !== f.E || t.maker !== f.m || t.type !== f.X || t.symbol !== f.s) {
        throw new Error(`trade ${i} differs: got ${JSON.stringify({ ...t, recvWallNs: 0, recvMonoNs: 0 })}, want ${JSON.stringify(f)}`);
      }
    }
    const wallAfter = BigInt(Date.now()) * 1_000_000n;
    expect(rec.trades[0].recvWallNs).toBeGreaterThanOrEqual(wallBefore - 5_000_000n);
    expect(rec.trades[fixture.length - 1].recvWallNs).toBeLessThanOrEqual(wallAfter + 5_000_000n);
    for (let i = 1; i < rec.trades.length; i++) {
      if (rec.trades[i].recvMonoNs < rec.trades[i - 1].recvMonoNs) throw new Error(`monotonic time went back at ${i}`);
    }
    const stats = rec.source.stats();
    expect(stats).toEqual(expect.objectContaining({ trades: 21313, gaps: 0, malformed: 0, duplicates: 0, reconnects: 0 }));
    expect(stats.perSymbol.BTCUSDT.lastId).toBe(5266605247);

    // Now the exchange has history: the reference is the exact mean of the last 100 REST trades.
    const [after] = await rec.source.prepare();
    const last100 = fixture.slice(-100);
    expect(after.refPrice).toBe(meanDecimal(last100.map((f) => f.p), 2));
    expect(after.refQty).toBe(meanDecimal(last100.map((f) => f.q)));
    expect(after.refPrice).toMatch(/^\d+\.\d{2}$/);
  });

  it('reports a dropped connection as a reconnect gap and loses nothing after it', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 400, tickMs: 5, faults: { dropAfter: 60 } });
    const published: number[] = [];
    ex.on('trade', (p) => p.s === 'BTCUSDT' && published.push(p.t));
    const rec = h.source(addr);
    await rec.source.start();
    await waitFor(() => rec.gaps.length >= 2 && rec.trades.length > 150, 10_000, 'two reconnect gaps');
    await rec.source.stop();
    expect(rec.reconnectReasons.length).toBeGreaterThanOrEqual(2);
    const { holes } = expectHolesAnnounced(rec);
    expect(holes).toBe(rec.gaps.length);
    for (const g of rec.gaps) expect(g.reason).toBe('reconnect');
    // Between one gap's nextId and the next gap, every id the exchange published arrived.
    const got = new Set(rec.ids());
    const first = rec.ids()[0];
    const last = rec.ids()[rec.ids().length - 1];
    const missing = published.filter((id) => id >= first && id <= last && !got.has(id));
    const inGaps = rec.gaps.reduce((n, g) => n + (g.nextId - g.lastId - 1), 0);
    expect(missing.length).toBe(inGaps);
    expect(rec.source.stats().missed).toBe(inGaps);
  });

  it('fills a reconnect gap in order from historicalTrades when given an API key', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 400, tickMs: 5, faults: { dropAfter: 60 } });
    const rec = h.source(addr, { apiKey: 'test-key' });
    const backfills: number[] = [];
    rec.source.on('backfill', (b) => backfills.push(b.count));
    await rec.source.start();
    await waitFor(() => backfills.length >= 2 && rec.trades.length > 200, 10_000, 'two backfills');
    await rec.source.stop();
    ex.faults.dropAfter = undefined;
    expect(rec.gaps.length).toBeGreaterThanOrEqual(2);
    const ids = rec.ids();
    for (let i = 1; i < ids.length; i++) if (ids[i] !== ids[i - 1] + 1) throw new Error(`hole after ${ids[i - 1]}: ${ids[i]}`);
    expect(backfills.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(rec.source.stats().backfilled).toBe(backfills.reduce((a, b) => a + b, 0));
  });

  it('reconnects a stalled connection through the data watchdog', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 200, tickMs: 5 });
    const rec = h.source(addr, { watchdogMs: 250 });
    await rec.source.start();
    await waitFor(() => rec.trades.length > 20, 5000, 'first trades');
    ex.stallClients();
    const n = rec.trades.length;
    await waitFor(() => rec.reconnectReasons.length > 0, 3000, 'a watchdog reconnect');
    expect(rec.reconnectReasons[0]).toMatch(/watchdog/);
    await waitFor(() => rec.trades.length > n + 20, 5000, 'trades after the reconnect');
    expectHolesAnnounced(rec);
    expect(rec.gaps.every((g) => g.reason === 'reconnect')).toBe(true);
  });

  it('reconnects when its own ping gets no pong in time', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 100 });
    const rec = h.source(addr, { watchdogMs: 0, pingIntervalMs: 100, pingTimeoutMs: 200 });
    await rec.source.start();
    await waitFor(() => rec.trades.length > 5, 5000, 'first trades');
    ex.faults.ignorePings = true;
    ex.stallClients();
    await waitFor(() => rec.reconnectReasons.length > 0, 3000, 'a pong-timeout reconnect');
    expect(rec.reconnectReasons[0]).toMatch(/no pong within 200 ms/);
  });

  it('keeps retrying while the exchange refuses connections, then connects', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 100 });
    ex.refuseConnections(400);
    const rec = h.source(addr);
    const t0 = Date.now();
    await rec.source.start();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    expect(rec.reconnectReasons.length).toBeGreaterThanOrEqual(2);
    expect(rec.reconnectReasons[0]).toMatch(/HTTP 503/);
    await waitFor(() => rec.trades.length > 3, 5000, 'trades');
  });

  it('rotates connections make-before-break with no gap and no duplicate', async () => {
    const symbols = ['BTCUSDT', 'ETHUSDT', '1000SATSUSDT'];
    const { ex, addr } = await h.exchange({ symbols, rate: 300, tickMs: 5 });
    const published = new Map<string, number[]>(symbols.map((s) => [s, []]));
    ex.on('trade', (p) => published.get(p.s)?.push(p.t));
    const rec = h.source(addr, { symbols, rotationMs: 250, rotationOverlapMs: 2000 });
    await rec.source.start();
    await waitFor(() => rec.rotations >= 3, 8000, 'three rotations');
    await rec.source.stop();
    expect(rec.gaps).toEqual([]);
    expect(rec.source.stats().rotations).toBeGreaterThanOrEqual(3);
    expect(rec.reconnectReasons).toEqual([]);
    for (const s of symbols) {
      const ids = rec.ids(s);
      expect(ids.length).toBeGreaterThan(50);
      for (let i = 1; i < ids.length; i++) if (ids[i] !== ids[i - 1] + 1) throw new Error(`${s}: ${ids[i - 1]} then ${ids[i]}`);
      const pub = published.get(s) ?? [];
      expect(pub.slice(pub.indexOf(ids[0]), pub.indexOf(ids[0]) + ids.length)).toEqual(ids);
    }
  });

  it('rotates away from a stalled connection: the hole becomes a reconnect gap, then ids continue', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 300, tickMs: 5 });
    const rec = h.source(addr, { watchdogMs: 0, rotationMs: 400, rotationOverlapMs: 300 });
    await rec.source.start();
    await waitFor(() => rec.trades.length > 10, 5000, 'first trades');
    ex.stallClients(); // only the current connection: the rotation's new one is healthy
    await waitFor(() => rec.rotations >= 1, 5000, 'the rotation');
    const n = rec.trades.length;
    await waitFor(() => rec.trades.length > n + 30, 5000, 'trades after the rotation');
    expect(rec.reconnectReasons).toEqual([]);
    expect(rec.gaps.length).toBe(1);
    expect(rec.gaps[0].reason).toBe('reconnect');
    expect(expectHolesAnnounced(rec).holes).toBe(1);
  });

  it("survives the exchange's connection lifetime cut: rotation first means no gap", async () => {
    const { addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 300, tickMs: 5, maxConnectionMs: 500 });
    const rotating = h.source(addr, { rotationMs: 250 });
    const plain = h.source(addr);
    await Promise.all([rotating.source.start(), plain.source.start()]);
    await waitFor(() => plain.reconnectReasons.length >= 2 && rotating.rotations >= 4, 8000, 'cuts and rotations').catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify({ p: plain.reconnectReasons, r: rotating.rotations, rr: rotating.reconnectReasons, s: rotating.source.stats() })}`);
    });
    // Without rotation each cut is a reconnect with a reported hole; with it nothing is lost.
    expect(plain.reconnectReasons[0]).toMatch(/code 1001/);
    expect(expectHolesAnnounced(plain).holes).toBe(plain.gaps.length);
    expect(rotating.gaps).toEqual([]);
    expect(rotating.reconnectReasons).toEqual([]);
    const ids = rotating.ids();
    for (let i = 1; i < ids.length; i++) if (ids[i] !== ids[i - 1] + 1) throw new Error(`${ids[i - 1]} then ${ids[i]}`);
  });

  it('reports an id jump inside a connection as a gap', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 0 });
    const rec = h.source(addr);
    await rec.source.start();
    await waitFor(() => ex.clientCount === 1, 2000, 'the connection');
    const a = ex.publish('BTCUSDT', 3);
    ex.skipIds('BTCUSDT', 5);
    const b = ex.publish('BTCUSDT', 2);
    await waitFor(() => rec.trades.length === 5, 3000, 'five trades');
    expect(rec.gaps).toEqual([{ symbol: 'BTCUSDT', lastId: a[2].t, nextId: a[2].t + 6, reason: 'jump' }]);
    expect(b[0].t).toBe(a[2].t + 6);
    expect(rec.source.stats().missed).toBe(5);
    expectHolesAnnounced(rec);
  });

  it('survives garbage frames, counts them and keeps delivering', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 200, tickMs: 5, faults: { garbageEvery: 7 } });
    const warns: string[] = [];
    const logger = { debug: () => {}, info: () => {}, error: () => {}, warn: (msg: string) => warns.push(msg) };
    const rec = h.source(addr, { logger });
    await rec.source.start();
    await waitFor(() => rec.trades.length > 30, 5000, 'trades');
    ex.sendGarbage();
    const n = rec.trades.length;
    await waitFor(() => rec.trades.length > n + 30, 5000, 'trades after garbage');
    const s = rec.source.stats();
    expect(s.malformed).toBeGreaterThanOrEqual(5);
    expect(s.unknownEvents).toBeGreaterThanOrEqual(1);
    expect(s.errorFrames).toBeGreaterThanOrEqual(1);
    expect(s.reconnects).toBe(0);
    expect(rec.gaps).toEqual([]);
    // Logged, but rate-limited: at most 5 per kind per 10 s however many arrive.
    const malformedLogs = warns.filter((w) => w.startsWith('malformed frame')).length;
    expect(malformedLogs).toBeGreaterThan(0);
    expect(malformedLogs).toBeLessThanOrEqual(5);
    expect(s.malformed).toBeGreaterThan(malformedLogs);
  });

  it('can be stopped and started again, resuming without a duplicate', async () => {
    const { addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 200, tickMs: 5 });
    const rec = h.source(addr);
    await rec.source.start();
    await waitFor(() => rec.trades.length > 10, 5000, 'trades');
    await rec.source.stop();
    expect(rec.source.stats().connections).toBe(0);
    const n = rec.trades.length;
    await rec.source.start();
    await waitFor(() => rec.trades.length > n + 10, 5000, 'trades after restart');
    expect(rec.source.stats().connections).toBe(1);
    expectHolesAnnounced(rec);
  });

  it('spreads streams over several connections', async () => {
    const symbols = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', '1000SATSUSDT'];
    const { ex, addr } = await h.exchange({ symbols, rate: 100 });
    const rec = h.source(addr, { symbols, maxStreamsPerConnection: 3 });
    await rec.source.start();
    expect(ex.clientCount).toBe(2);
    expect(rec.source.stats().connections).toBe(2);
    await waitFor(() => symbols.every((s) => rec.ids(s).length > 3), 5000, 'trades of every symbol');
    const sats = rec.trades.find((t) => t.symbol === '1000SATSUSDT');
    expect(sats?.price).toMatch(/^0\.\d{7}$/);
    expect(sats?.qty).toMatch(/^\d+$/);
  });
});

describe('BinanceSource start-up checks', () => {
  it('names an unknown symbol before anything connects', async () => {
    const { ex, addr } = await h.exchange({ rate: 0 });
    const rec = h.source(addr, { symbols: ['BTCUSDT', 'NOPEUSDT'] });
    const err = await rec.source.prepare().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PerpSignalError);
    expect(err).toEqual(expect.objectContaining({ code: 'E_UNKNOWN_SYMBOL' }));
    expect((err as Error).message).toMatch(/NOPEUSDT/);
    expect(ex.connectionsAccepted).toBe(0);
  });

  it.each([
    ['FTTUSDT', /not trading \(status SETTLING\)/],
    ['BTCUSDT_260327', /not a USDT perpetual/],
    ['BTCUSDC', /not a USDT perpetual/],
  ])('refuses %s as not tradable', async (symbol, why) => {
    const { addr } = await h.exchange({ rate: 0 });
    const err = await h.source(addr, { symbols: [symbol] }).source.prepare().catch((e: unknown) => e);
    expect(err).toEqual(expect.objectContaining({ code: 'E_SYMBOL_NOT_TRADING' }));
    expect((err as Error).message).toContain(symbol);
    expect((err as Error).message).toMatch(why);
  });

  it('reads tick and step sizes, including the small-tick 1000SATSUSDT', async () => {
    const { addr } = await h.exchange({ rate: 0 });
    const rec = h.source(addr, { symbols: ['BTCUSDT', '1000SATSUSDT', 'SOLUSDT'] });
    const infos = await rec.source.prepare();
    expect(infos.map((i) => [i.symbol, i.tickSize, i.stepSize])).toEqual([
      ['BTCUSDT', '0.10', '0.001'],
      ['1000SATSUSDT', '0.0000001', '1'],
      ['SOLUSDT', '0.0100', '1'],
    ]);
  });

  it('retries REST after 429, honouring Retry-After', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 0 });
    ex.publish('BTCUSDT', 10);
    ex.failRest(2, 429, 1);
    const rec = h.source(addr);
    const t0 = Date.now();
    const [info] = await rec.source.prepare();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    expect(info.refPrice).toMatch(/^\d+\.\d{2}$/);
  });

  it('retries after 418 and fails with a clear error when REST stays down', async () => {
    const { ex, addr } = await h.exchange({ rate: 0 });
    ex.failRest(100, 418, 0);
    const rec = h.source(addr, { restAttempts: 3 });
    const err = await rec.source.prepare().catch((e: unknown) => e);
    expect(err).toEqual(expect.objectContaining({ code: 'E_EXCHANGE_INFO' }));
    expect((err as Error).message).toMatch(/HTTP 418 code -1003/);
    expect(ex.faults.restFailures).toBe(97);
  });

  it('rejects an empty symbol list and URLs of the wrong kind', () => {
    expect(() => new BinanceSource({ symbols: [] })).toThrow(expect.objectContaining({ code: 'E_NO_SYMBOLS' }));
    expect(() => new BinanceSource({ symbols: ['BTCUSDT'], wsUrl: 'https://fstream.binance.com' })).toThrow(
      expect.objectContaining({ code: 'E_BAD_URL', message: expect.stringMatching(/wsUrl .* is not a ws: or wss: URL/) }),
    );
    expect(() => new BinanceSource({ symbols: ['BTCUSDT'], restUrl: 'fapi.binance.com' })).toThrow(
      expect.objectContaining({ code: 'E_BAD_URL' }),
    );
  });
});

describe('Backoff', () => {
  it('grows exponentially with jitter, stays under its cap, and resets', () => {
    let r = 0;
    const b = new Backoff({ baseMs: 100, maxMs: 1000, random: () => r });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([50, 100, 200, 400, 500]);
    r = 0.999999;
    expect(b.next()).toBe(1000);
    expect(b.attempts).toBe(6);
    b.reset();
    expect(b.next()).toBe(100);
    const rnd = new Backoff({ baseMs: 100, maxMs: 1000 });
    for (let i = 0; i < 100; i++) {
      const d = rnd.next();
      expect(d).toBeGreaterThanOrEqual(50);
      expect(d).toBeLessThanOrEqual(1000);
    }
  });
});

describe('resolveEndpoints', () => {
  it('prefers flags, then env, then Binance mainnet', () => {
    expect(resolveEndpoints({}, {})).toEqual({ wsUrl: DEFAULT_WS_URL, restUrl: DEFAULT_REST_URL });
    expect(DEFAULT_WS_URL).toBe('wss://fstream.binance.com/public');
    expect(DEFAULT_REST_URL).toBe('https://fapi.binance.com');
    const env = { PERP_SIGNAL_WS_URL: 'wss://fstream.binancefuture.com/public/', PERP_SIGNAL_REST_URL: 'https://demo-fapi.binance.com' };
    expect(resolveEndpoints({}, env)).toEqual({ wsUrl: 'wss://fstream.binancefuture.com/public', restUrl: 'https://demo-fapi.binance.com' });
    expect(resolveEndpoints({ 'ws-url': 'ws://127.0.0.1:9/public', restUrl: 'http://127.0.0.1:9' }, env)).toEqual({
      wsUrl: 'ws://127.0.0.1:9/public',
      restUrl: 'http://127.0.0.1:9',
    });
    expect(resolveApiKey({}, {})).toBeUndefined();
    expect(resolveApiKey({}, { PERP_SIGNAL_API_KEY: 'env-key' })).toBe('env-key');
    expect(resolveApiKey({ 'api-key': 'flag-key' }, { PERP_SIGNAL_API_KEY: 'env-key' })).toBe('flag-key');
  });
});


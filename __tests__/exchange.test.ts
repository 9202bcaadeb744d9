/** The local exchange as a client sees it: real HTTP and RFC 6455 WebSocket on 127.0.0.1. */
import WebSocket from 'ws';
import { DEFAULT_SYMBOLS, SymbolWalk, seededRandom } from '../ts/exchange';
import { toScaled, decimalsOf } from '../ts/source/decimal';
import { Harness, waitFor } from './source.helpers';

const h = new Harness();
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await h.cleanup();
});

async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

function open(url: string, opts: WebSocket.ClientOptions = {}): Promise<{ ws: WebSocket; frames: string[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    sockets.push(ws);
    const frames: string[] = [];
    ws.on('message', (d) => frames.push(d.toString()));
    ws.once('open', () => resolve({ ws, frames }));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

describe('local exchange REST', () => {
  it('serves exchangeInfo with Binance filters for every default symbol', async () => {
    const { addr } = await h.exchange({ rate: 0 });
    const { status, body, headers } = await getJson(`${addr.restUrl}/fapi/v1/exchangeInfo`);
    expect(status).toBe(200);
    expect(headers.get('content-type')).toBe('application/json');
    expect(Number(headers.get('x-mbx-used-weight-1m'))).toBeGreaterThan(0);
    const info = body as { symbols: { symbol: string; status: string; contractType: string; quoteAsset: string; filters: Record<string, string>[] }[] };
    const bySymbol = new Map(info.symbols.map((s) => [s.symbol, s]));
    for (const name of ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', '1000SATSUSDT']) {
      const s = bySymbol.get(name);
      expect(s).toEqual(expect.objectContaining({ status: 'TRADING', contractType: 'PERPETUAL', quoteAsset: 'USDT' }));
      expect(s?.filters.map((f) => f.filterType)).toEqual(
        expect.arrayContaining(['PRICE_FILTER', 'LOT_SIZE', 'MARKET_LOT_SIZE', 'MIN_NOTIONAL', 'PERCENT_PRICE']),
      );
    }
    const sats = bySymbol.get('1000SATSUSDT');
    expect(sats?.filters.find((f) => f.filterType === 'PRICE_FILTER')?.tickSize).toBe('0.0000001');
    expect(sats?.filters.find((f) => f.filterType === 'LOT_SIZE')?.stepSize).toBe('1');
    expect(bySymbol.get('FTTUSDT')?.status).toBe('SETTLING');
  });

  it('serves recent trades with exact quoteQty and Binance error bodies', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 0 });
    const pub = ex.publish('BTCUSDT', 30);
    const { body } = await getJson(`${addr.restUrl}/fapi/v1/trades?symbol=BTCUSDT&limit=5`);
    const rows = body as { id: number; price: string; qty: string; quoteQty: string; time: number; isBuyerMaker: boolean }[];
    expect(rows.map((r) => r.id)).toEqual(pub.slice(-5).map((p) => p.t));
    for (const r of rows) {
      const want = toScaled(r.price, 2) * toScaled(r.qty, 3);
      expect(toScaled(r.quoteQty, 5)).toBe(want);
      expect(Object.keys(r).sort()).toEqual(['id', 'isBuyerMaker', 'price', 'qty', 'quoteQty', 'time']);
    }
    expect((await getJson(`${addr.restUrl}/fapi/v1/trades?symbol=BTCUSDT`)).body).toHaveLength(30);
    expect(await getJson(`${addr.restUrl}/fapi/v1/trades?symbol=NOPE`)).toEqual(
      expect.objectContaining({ status: 400, body: { code: -1121, msg: 'Invalid symbol.' } }),
    );
    expect(await getJson(`${addr.restUrl}/fapi/v1/trades`)).toEqual(
      expect.objectContaining({ status: 400, body: expect.objectContaining({ code: -1102 }) }),
    );
    expect((await getJson(`${addr.restUrl}/fapi/v1/trades?symbol=BTCUSDT&limit=abc`)).body).toEqual(expect.objectContaining({ code: -1100 }));
    expect((await getJson(`${addr.restUrl}/nope`)).status).toBe(404);
  });

  it('requires an API key for historicalTrades and pages from fromId', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['ETHUSDT'], rate: 0 });
    const pub = ex.publish('ETHUSDT', 20);
    const url = `${addr.restUrl}/fapi/v1/historicalTrades?symbol=ETHUSDT&fromId=${pub[5].t}&limit=3`;
    expect(await getJson(url)).toEqual(expect.objectContaining({ status: 401, body: { code: -2014, msg: 'API-key format invalid.' } }));
    const ok = await getJson(url, { 'X-MBX-APIKEY': 'k' });
    expect((ok.body as { id: number }[]).map((r) => r.id)).toEqual([pub[5].t, pub[6].t, pub[7].t]);
  });

  it('answers 429 with Retry-After and a Binance body while the fault is set', async () => {
    const { ex, addr } = await h.exchange({ rate: 0 });
    ex.failRest(1, 429, 3);
    const r = await getJson(`${addr.restUrl}/fapi/v1/ping`);
    expect(r.status).toBe(429);
    expect(r.headers.get('retry-after')).toBe('3');
    expect(r.body).toEqual(expect.objectContaining({ code: -1003 }));
    expect((await getJson(`${addr.restUrl}/fapi/v1/ping`)).status).toBe(200);
  });
});

describe('local exchange WebSocket', () => {
  it('serves combined frames on /stream and /public/stream, raw payloads on /ws/<stream>', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT', 'ETHUSDT'], rate: 0 });
    const base = `ws://127.0.0.1:${addr.port}`;
    const combined = await open(`${base}/stream?streams=btcusdt@trade/ethusdt@trade`);
    const pub = await open(`${base}/public/stream?streams=ethusdt@trade`);
    const raw = await open(`${base}/ws/btcusdt@trade`);
    const market = await open(`${base}/market/stream?streams=btcusdt@trade`);
    const [b] = ex.publish('BTCUSDT', 1);
    const [e] = ex.publish('ETHUSDT', 1);
    await waitFor(() => combined.frames.length === 2 && pub.frames.length === 1 && raw.frames.length === 1, 3000, 'frames');
    expect(JSON.parse(combined.frames[0])).toEqual({ stream: 'btcusdt@trade', data: b });
    expect(JSON.parse(combined.frames[1])).toEqual({ stream: 'ethusdt@trade', data: e });
    expect(JSON.parse(pub.frames[0])).toEqual({ stream: 'ethusdt@trade', data: e });
    expect(JSON.parse(raw.frames[0])).toEqual(b);
    expect(Object.keys(b)).toEqual(['e', 'E', 'T', 's', 't', 'p', 'q', 'X', 'm']);
    // On /market a @trade stream is accepted and stays silent, as on Binance since the 2026 routing.
    expect(market.frames).toEqual([]);
    await expect(open(`${base}/nowhere`)).rejects.toThrow(/HTTP 404/);
  });

  it('handles SUBSCRIBE and drops a client that sends too fast', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 0 });
    const c = await open(`ws://127.0.0.1:${addr.port}/ws`);
    c.ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['btcusdt@trade'], id: 1 }));
    await waitFor(() => c.frames.length === 1, 2000, 'subscribe reply');
    expect(JSON.parse(c.frames[0])).toEqual({ result: null, id: 1 });
    const [t] = ex.publish('BTCUSDT', 1);
    await waitFor(() => c.frames.length === 2, 2000, 'trade');
    expect(JSON.parse(c.frames[1])).toEqual(t);
    const closed = new Promise<number>((r) => c.ws.once('close', (code) => r(code)));
    for (let i = 0; i < 12; i++) c.ws.send(JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: i + 2 }));
    expect(await closed).toBe(1008);
  });

  it('pings clients and drops the ones that do not answer', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 0, pingIntervalMs: 50, pongTimeoutMs: 400 });
    const url = `${addr.wsUrl}/stream?streams=btcusdt@trade`;
    const good = await open(url);
    const mute = await open(url, { autoPong: false });
    let pings = 0;
    mute.ws.on('ping', () => (pings += 1));
    const closed = new Promise<void>((r) => mute.ws.once('close', () => r()));
    await closed;
    expect(pings).toBeGreaterThanOrEqual(2);
    expect(good.ws.readyState).toBe(WebSocket.OPEN);
    expect(ex.clientCount).toBe(1);
  });

  it('refuses upgrades with 503 while told to', async () => {
    const { ex, addr } = await h.exchange({ rate: 0 });
    ex.refuseConnections(10_000);
    await expect(open(`${addr.wsUrl}/stream?streams=btcusdt@trade`)).rejects.toThrow(/HTTP 503/);
    ex.faults.refuseUntil = 0;
    await open(`${addr.wsUrl}/stream?streams=btcusdt@trade`);
  });

  it('drops and stalls connections after N frames when those faults are set', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT'], rate: 0, faults: { dropAfter: 5 } });
    const c = await open(`${addr.wsUrl}/stream?streams=btcusdt@trade`);
    const closed = new Promise<void>((r) => c.ws.once('close', () => r()));
    ex.publish('BTCUSDT', 8);
    await closed;
    expect(c.frames).toHaveLength(5);
    ex.faults.dropAfter = undefined;
    ex.faults.stallAfter = 3;
    const s = await open(`${addr.wsUrl}/stream?streams=btcusdt@trade`);
    ex.publish('BTCUSDT', 6);
    await waitFor(() => s.frames.length >= 3, 2000, 'three frames');
    await new Promise((r) => setTimeout(r, 100));
    expect(s.frames).toHaveLength(3);
    expect(s.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('synthetic generator', () => {
  it.each(DEFAULT_SYMBOLS.map((s) => [s.symbol, s] as const))('%s walks on its tick grid with exact decimals', (_name, spec) => {
    const walk = new SymbolWalk(spec, seededRandom(1), 100);
    const tick = toScaled(spec.tickSize, decimalsOf(spec.tickSize));
    const step = toScaled(spec.stepSize, decimalsOf(spec.stepSize));
    const priceRe = new RegExp(`^\\d+\\.\\d{${spec.pricePrecision}}$`);
    const ids: number[] = [];
    const prices = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const t = walk.next(1000 + i);
      ids.push(t.t);
      prices.add(t.p);
      if (!priceRe.test(t.p)) throw new Error(`${t.p} does not have ${spec.pricePrecision} decimals`);
      if (toScaled(t.p, decimalsOf(spec.tickSize)) % tick !== 0n) throw new Error(`${t.p} is off the ${spec.tickSize} grid`);
      if (toScaled(t.q, decimalsOf(spec.stepSize)) % step !== 0n || toScaled(t.q, decimalsOf(spec.stepSize)) <= 0n) {
        throw new Error(`${t.q} is not a positive multiple of ${spec.stepSize}`);
      }
    }
    expect(ids[0]).toBe(100);
    expect(ids[4999]).toBe(5099);
    expect(prices.size).toBeGreaterThan(10);
  });
});

describe('local exchange fixed pace (load tests)', () => {
  it('sends exactly `rate` trades per second per symbol, consecutive ids, on raw and combined streams', async () => {
    const rate = 20_000;
    const before = Date.now();
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT', 'ETHUSDT'], rate, pace: 'fixed' });
    const after = Date.now();
    const combined = await open(`${addr.wsUrl}/stream?streams=btcusdt@trade/ethusdt@trade`);
    const raw = await open(`${addr.wsUrl.replace(/\/public$/, '')}/ws/ethusdt@trade`);
    await new Promise((r) => setTimeout(r, 500));
    const published = ex.tradesPublished / ex.tradingSymbols.length;
    // Every trading symbol at `rate` since the flow started (between before and after): never more,
    // and not less than what a late 1 ms timer (catching up at most 50 ms per tick) can lag.
    expect(published).toBeLessThanOrEqual(rate * ((Date.now() - before) / 1000));
    expect(published).toBeGreaterThan(rate * ((Date.now() - after - 100) / 1000));
    const last = new Map<string, number>();
    for (const f of combined.frames) {
      const m = JSON.parse(f) as { stream: string; data: { e: string; s: string; t: number; p: string; q: string; T: number; m: boolean } };
      expect(m.stream).toBe(`${m.data.s.toLowerCase()}@trade`);
      expect(m.data).toEqual(expect.objectContaining({ e: 'trade', X: 'MARKET' }));
      expect(m.data.p).toMatch(/^\d+\.\d{2}$/);
      const prev = last.get(m.data.s);
      if (prev !== undefined && m.data.t !== prev + 1) throw new Error(`${m.data.s}: id ${m.data.t} after ${prev}`);
      last.set(m.data.s, m.data.t);
    }
    expect([...last.keys()].sort()).toEqual(['BTCUSDT', 'ETHUSDT']);
    expect(combined.frames.length).toBeGreaterThan(rate * 0.5);
    const rawTrades = raw.frames.map((f) => JSON.parse(f) as { s: string; t: number });
    expect(rawTrades.length).toBeGreaterThan(rate * 0.3);
    expect(rawTrades.every((t, i) => t.s === 'ETHUSDT' && (i === 0 || t.t === rawTrades[i - 1].t + 1))).toBe(true);
    // REST still answers with recent trades of the flow.
    const { body } = await getJson(`${addr.restUrl}/fapi/v1/trades?symbol=BTCUSDT&limit=1`);
    expect((body as { id: number }[])[0].id).toBeGreaterThanOrEqual(last.get('BTCUSDT') ?? 0);
  });
});

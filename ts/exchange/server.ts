/**
 * LocalExchange: a Binance USD-M compatible market-data exchange on 127.0.0.1. Real RFC 6455
 * WebSocket (`ws`) on `/stream`, `/public/stream`, `/ws/<stream>`; real HTTP REST with Binance's
 * JSON shapes and error bodies; trades from the synthetic generator or a replay file; fault
 * injection for tests.
 */
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { PerpSignalError } from '../errors';
import { noopLogger, type Logger } from '../observe/logger';
import { decimalsOf, fromScaled, toScaled } from '../source/decimal';
import { Faults, GARBAGE_FRAMES, type FaultOptions } from './faults';
import { FixedRateFlow, type TickBlock } from './fixed-rate';
import { SymbolWalk, seededRandom, type TradePayload } from './generator';
import { loadReplay, type ReplayFrame } from './replay';
import { DEFAULT_SYMBOLS, NON_TRADING_SYMBOLS, exchangeInfoBody, genericSpec, type SymbolSpec } from './symbols';

/** Under this much time to the next frame, exact replay pacing polls instead of sleeping. */
const EXACT_SPIN_NS = 5_000;

export interface ExchangeOptions {
  /** TCP port on 127.0.0.1 (0 = any free port; default 0). */
  port?: number;
  /** Trading symbols: names of built-in specs (BTCUSDT, ETHUSDT, SOLUSDT, 1000SATSUSDT) or specs. */
  symbols?: (string | SymbolSpec)[];
  /** Generated trades per second per symbol (default 10; 0 = none unless published by hand). */
  rate?: number;
  /**
   * `random` (default): bursts around `rate` with a random walk per trade. `fixed`: exactly `rate`
   * trades per second per symbol from a precomputed cycle of the walk, sent as ready-made frames
   * with one socket write per connection per tick (load tests, up to ~10^6 frames/s); in this mode
   * trades are not emitted as `trade` events and REST keeps only each tick's last trade.
   */
  pace?: 'random' | 'fixed';
  /** Replay this capture instead of generating (`<ns> <frame>` lines, .gz by name); it starts when the first WebSocket client connects. */
  replay?: string;
  /** Replay speed: 1 = recorded pace, 10 = ten times faster, 0 = as fast as possible (default 1). */
  speed?: number;
  /**
   * How closely a replay keeps the recorded times: 'timer' (default) sends what is due on each
   * timer tick (>= 1 ms, so sub-millisecond spacing arrives in bursts, at little CPU); 'exact' sends
   * each frame at its own time (sleeping the thread for sub-millisecond waits, so up to the kernel's
   * timer slack, ~50 µs, late; for latency benchmarks that need the recorded spacing).
   */
  replayTiming?: 'timer' | 'exact';
  /** Seed of the generator (default: random). */
  seed?: number;
  /** Generator tick, ms (default 20; 1 with `pace: 'fixed'`). */
  tickMs?: number;
  /** Server pings each connection this often, ms (default 180 000, as Binance). */
  pingIntervalMs?: number;
  /** Drops a connection that has not answered a ping for this long, ms (default 600 000). */
  pongTimeoutMs?: number;
  /** Connections are closed after this long, ms, as Binance does at 24 h (default 24 h). */
  maxConnectionMs?: number;
  /** Incoming messages allowed per second per connection before it is dropped (default 10). */
  maxIncomingPerSec?: number;
  /** Trades kept per symbol for /fapi/v1/trades and historicalTrades (default 10 000). */
  history?: number;
  /** First trade id of generated symbols (default 1 000 000 000). */
  firstId?: number;
  /**
   * Trades per symbol made up at start, dated over the last few seconds, so the REST trade
   * endpoints answer from the first request as a real exchange's do (default 0; generator only).
   */
  pastTrades?: number;
  faults?: FaultOptions;
  logger?: Logger;
}

interface Client {
  ws: WebSocket;
  /** The connection's socket, for the fixed-pace flow's pre-framed writes. */
  raw: Duplex;
  streams: Set<string>;
  combined: boolean;
  /** `/market` path: @trade streams are accepted there and then stay silent, as on Binance. */
  silent: boolean;
  sent: number;
  stalled: boolean;
  lastPong: number;
  incoming: number[];
}

interface Stored {
  p: TradePayload;
  text: string;
}

export interface ExchangeAddress {
  wsUrl: string;
  restUrl: string;
  port: number;
}

/** Events of LocalExchange: every published trade in order, the end of a replay, each new connection. */
export interface ExchangeEvents {
  trade: [t: TradePayload];
  replayEnd: [];
  connection: [path: string];
}

export class LocalExchange extends EventEmitter<ExchangeEvents> {
  readonly faults: Faults;
  private readonly specs = new Map<string, SymbolSpec>();
  private readonly walks = new Map<string, SymbolWalk>();
  private readonly history = new Map<string, Stored[]>();
  private readonly clients = new Set<Client>();
  private readonly logger: Logger;
  private readonly random: () => number;
  private server?: http.Server;
  private wss?: WebSocketServer;
  private timers: NodeJS.Timeout[] = [];
  private replayFrames?: ReplayFrame[];
  private replayPos = 0;
  /** Never signalled: `Atomics.wait` on it is a sub-millisecond sleep for exact replay pacing. */
  private readonly pacer = new Int32Array(new SharedArrayBuffer(4));
  private replayStarted = false;
  private weight = { minute: 0, used: 0 };
  private stopped = false;
  /** Connections accepted since start. */
  connectionsAccepted = 0;
  private fixed?: FixedRateFlow;
  private published = 0;

  constructor(private readonly opts: ExchangeOptions = {}) {
    super();
    this.logger = opts.logger ?? noopLogger;
    this.faults = new Faults(opts.faults);
    this.random = seededRandom(opts.seed ?? Math.floor(Math.random() * 2 ** 31));
    const names = opts.symbols ?? DEFAULT_SYMBOLS;
    for (const s of names) {
      const spec =
        typeof s === 'string' ? (DEFAULT_SYMBOLS.find((d) => d.symbol === s.toUpperCase()) ?? genericSpec(s.toUpperCase())) : s;
      this.specs.set(spec.symbol, spec);
    }
    for (const s of NON_TRADING_SYMBOLS) if (!this.specs.has(s.symbol)) this.specs.set(s.symbol, s);
  }

  /** Listens on 127.0.0.1 and starts the trade flow. */
  async start(): Promise<ExchangeAddress> {
    if (this.opts.replay) {
      this.replayFrames = await loadReplay(this.opts.replay);
      for (const f of this.replayFrames) if (!this.specs.has(f.symbol)) this.specs.set(f.symbol, genericSpec(f.symbol));
    }
    for (const spec of this.specs.values()) {
      if ((spec.status ?? 'TRADING') !== 'TRADING' || (spec.contractType ?? 'PERPETUAL') !== 'PERPETUAL') continue;
      this.history.set(spec.symbol, []);
      this.walks.set(spec.symbol, new SymbolWalk(spec, this.random, this.opts.firstId));
    }
    const past = this.replayFrames ? 0 : (this.opts.pastTrades ?? 0);
    const now = Date.now();
    for (const w of this.walks.values()) for (let i = past; i > 0; i--) this.remember(w.next(now - 50 * i));
    const server = http.createServer((req, res) => this.onHttp(req, res));
    // autoPong off: pongs are answered by hand so the ignorePings fault can withhold them.
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, autoPong: false });
    server.on('upgrade', (req, socket, head) => this.onUpgrade(wss, req, socket, head));
    this.server = server;
    this.wss = wss;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new PerpSignalError(
            e.code === 'EADDRINUSE' ? 'E_ADDR_IN_USE' : 'E_BIND',
            `cannot listen on 127.0.0.1:${this.opts.port ?? 0}: ${e.message}; choose another --port (0 = any free port)`,
          ),
        ),
      );
      server.listen(this.opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    this.startPings();
    if (!this.replayFrames) {
      if (this.opts.pace === 'fixed') this.startFixed();
      else this.startGenerator();
    }
    this.logger.info('local exchange listening', { port });
    return { wsUrl: `ws://127.0.0.1:${port}/public`, restUrl: `http://127.0.0.1:${port}`, port };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const c of this.clients) c.ws.terminate();
    this.clients.clear();
    this.wss?.close();
    const server = this.server;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }

  // ---- controls for tests --------------------------------------------------------------------

  /** Open WebSocket connections. */
  get clientCount(): number {
    return this.clients.size;
  }

  /** Trades published since start (all symbols). */
  get tradesPublished(): number {
    return this.published + (this.fixed?.total ?? 0);
  }

  /** Symbols that trade (not the listed-but-not-trading ones). */
  get tradingSymbols(): string[] {
    return [...this.walks.keys()];
  }

  /** Terminates every connection now (TCP reset, no close frame). */
  dropClients(): void {
    for (const c of this.clients) c.ws.terminate();
  }

  /** Stops sending data to the current connections while keeping them open. */
  stallClients(): void {
    for (const c of this.clients) c.stalled = true;
  }

  /** Refuses WebSocket upgrades with HTTP 503 for `ms`. */
  refuseConnections(ms: number): void {
    this.faults.refuseUntil = Date.now() + ms;
  }

  /** Sends every kind of garbage frame (and a binary frame) to each connection. */
  sendGarbage(frames: string[] = GARBAGE_FRAMES): void {
    for (const c of this.clients) {
      for (const f of frames) c.ws.send(f);
      c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    }
  }

  /** The next `n` trade ids of `symbol` are never published. */
  skipIds(symbol: string, n: number): void {
    const w = this.walks.get(symbol);
    if (!w) throw new PerpSignalError('E_UNKNOWN_SYMBOL', `no trading symbol ${symbol} on this exchange`);
    w.nextId += n;
  }

  /** The next `n` REST requests answer `status` (429 by default) with Retry-After `retryAfterSec`. */
  failRest(n: number, status = 429, retryAfterSec = 1): void {
    this.faults.restFailures = n;
    this.faults.restStatus = status;
    this.faults.retryAfterSec = retryAfterSec;
  }

  /** Publishes `count` generated trades of `symbol` now (works with rate 0). */
  publish(symbol: string, count = 1, time = Date.now()): TradePayload[] {
    const w = this.walks.get(symbol);
    if (!w) throw new PerpSignalError('E_UNKNOWN_SYMBOL', `no trading symbol ${symbol} on this exchange`);
    const out: TradePayload[] = [];
    for (let i = 0; i < count; i++) {
      const p = w.next(time);
      if (this.faults.skipEvery && p.t % this.faults.skipEvery === 0) continue;
      this.broadcast(p, JSON.stringify(p));
      out.push(p);
    }
    return out;
  }

  // ---- trade flow ----------------------------------------------------------------------------

  private startGenerator(): void {
    const rate = this.opts.rate ?? 10;
    if (rate <= 0) return;
    const tickMs = this.opts.tickMs ?? 20;
    const perTick = (rate * tickMs) / 1000;
    const carry = new Map<string, number>();
    this.timers.push(
      setInterval(() => {
        const now = Date.now();
        for (const symbol of this.walks.keys()) {
          // Expected count with carry-over, randomised: bursts of several trades at one time.
          let due = (carry.get(symbol) ?? 0) + perTick * (0.5 + this.random());
          let n = Math.floor(due);
          due -= n;
          if (n > 0 && this.random() < 0.05) n += Math.floor(this.random() * 8);
          carry.set(symbol, due);
          if (n > 0) this.publish(symbol, Math.min(n, 10_000), now);
        }
      }, tickMs),
    );
  }

  private startFixed(): void {
    const rate = this.opts.rate ?? 10;
    if (rate <= 0) return;
    const flow = new FixedRateFlow([...this.walks.values()], rate);
    this.fixed = flow;
    const maxQueued = 64 * 1024 * 1024;
    this.timers.push(
      setInterval(() => {
        const blocks = flow.tick(Date.now());
        for (const b of blocks) this.remember(b.last);
        for (const c of this.clients) {
          if (c.silent || c.stalled || c.ws.readyState !== WebSocket.OPEN) continue;
          const mine = blocks.filter((b) => c.streams.has(b.stream));
          if (mine.length === 0) continue;
          const writable = c.raw as Duplex & { writableLength: number };
          if (writable.writableLength > maxQueued) {
            this.logger.warn('local exchange: dropping a connection that does not keep up', { queued: writable.writableLength });
            c.ws.terminate();
            continue;
          }
          c.raw.write(Buffer.from(mine.map((b: TickBlock) => (c.combined ? b.combined() : b.raw())).join(''), 'latin1'));
          for (const b of mine) c.sent += b.count;
        }
      }, this.opts.tickMs ?? 1),
    );
  }

  private startReplay(): void {
    const frames = this.replayFrames ?? [];
    const speed = this.opts.speed ?? 1;
    const exact = this.opts.replayTiming === 'exact';
    if (frames.length === 0) return;
    const t0 = frames[0].recvNs;
    const start = process.hrtime.bigint();
    const step = (): void => {
      if (this.stopped) return;
      const elapsed = process.hrtime.bigint() - start;
      let sent = 0;
      while (this.replayPos < frames.length && sent < 2000) {
        const f = frames[this.replayPos];
        if (speed > 0 && Number(f.recvNs - t0) / speed > Number(elapsed)) break;
        this.replayPos += 1;
        sent += 1;
        const p = JSON.parse(f.payload) as TradePayload;
        this.broadcast(p, f.payload, f.stream);
      }
      if (this.replayPos >= frames.length) {
        this.emit('replayEnd');
        return;
      }
      let wait = 0;
      if (speed > 0 && sent < 2000) {
        const dueNs = Number(frames[this.replayPos].recvNs - t0) / speed - Number(process.hrtime.bigint() - start);
        if (exact && dueNs < 2e6) {
          // Sleep the thread to the frame's time rather than polling the event loop: a polling
          // exchange keeps its vCPU busy, and a process sharing that vCPU (a benchmark's client)
          // then pays a cross-CPU wake-up per frame that an idle vCPU would not cost. Never more
          // than 1 ms at a time, so sockets are still served between frames.
          if (dueNs > EXACT_SPIN_NS) Atomics.wait(this.pacer, 0, 0, Math.min(1e6, dueNs) / 1e6);
          setImmediate(step);
          return;
        }
        // Exact: wake a millisecond early and poll the rest of the way.
        wait = Math.max(1, Math.floor(dueNs / 1e6) - (exact ? 1 : 0));
      }
      const t = setTimeout(step, wait);
      this.timers.push(t);
      if (this.timers.length > 64) this.timers = this.timers.slice(-8);
    };
    step();
  }

  /** Keeps `p` for the REST trade endpoints. */
  private remember(p: TradePayload, text = JSON.stringify(p)): void {
    const hist = this.history.get(p.s);
    if (hist) {
      hist.push({ p, text });
      const cap = this.opts.history ?? 10_000;
      if (hist.length > 2 * cap) hist.splice(0, hist.length - cap);
    }
  }

  private broadcast(p: TradePayload, text: string, stream = `${p.s.toLowerCase()}@trade`): void {
    this.remember(p, text);
    this.published += 1;
    this.emit('trade', p);
    let combinedText: string | undefined;
    for (const c of this.clients) {
      if (c.silent || c.stalled || !c.streams.has(stream) || c.ws.readyState !== WebSocket.OPEN) continue;
      if (c.combined) combinedText ??= `{"stream":"${stream}","data":${text}}`;
      c.ws.send(c.combined ? (combinedText as string) : text);
      c.sent += 1;
      const f = this.faults;
      if (f.garbageEvery && c.sent % f.garbageEvery === 0) c.ws.send(GARBAGE_FRAMES[(c.sent / f.garbageEvery) % GARBAGE_FRAMES.length]);
      if (f.stallAfter !== undefined && c.sent >= f.stallAfter) c.stalled = true;
      if (f.dropAfter !== undefined && c.sent >= f.dropAfter) c.ws.terminate();
    }
  }

  // ---- WebSocket -----------------------------------------------------------------------------

  private onUpgrade(wss: WebSocketServer, req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const refuse = (status: string): void => {
      socket.write(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      socket.destroy();
    };
    if (this.stopped) return refuse('503 Service Unavailable');
    const route = routeOf(url);
    if (!route) return refuse('404 Not Found');
    if (this.faults.refuseNow()) return refuse('503 Service Unavailable');
    wss.handleUpgrade(req, socket, head, (ws) => {
      const client: Client = { ws, raw: socket, ...route, sent: 0, stalled: false, lastPong: Date.now(), incoming: [] };
      this.clients.add(client);
      this.connectionsAccepted += 1;
      // A replay starts with its first listener, so nobody misses its beginning.
      if (this.replayFrames && !this.replayStarted) {
        this.replayStarted = true;
        setImmediate(() => this.startReplay());
      }
      this.emit('connection', url.pathname);
      ws.on('pong', () => (client.lastPong = Date.now()));
      ws.on('ping', (data) => {
        if (!this.faults.ignorePings) ws.pong(data);
      });
      ws.on('message', (data, isBinary) => this.onClientMessage(client, data.toString(), isBinary));
      const lifetime = setTimeout(() => ws.close(1001, 'connection lifetime exceeded'), this.opts.maxConnectionMs ?? 24 * 3600_000);
      lifetime.unref();
      ws.on('close', () => {
        clearTimeout(lifetime);
        this.clients.delete(client);
      });
      ws.on('error', () => this.clients.delete(client));
    });
  }

  private onClientMessage(c: Client, text: string, isBinary: boolean): void {
    const now = Date.now();
    c.incoming = c.incoming.filter((t) => now - t < 1000);
    c.incoming.push(now);
    if (c.incoming.length > (this.opts.maxIncomingPerSec ?? 10)) {
      c.ws.close(1008, 'Too many requests');
      return;
    }
    let req: { method?: unknown; params?: unknown; id?: unknown };
    try {
      if (isBinary) throw new Error('binary');
      req = JSON.parse(text);
    } catch {
      c.ws.send(JSON.stringify({ error: { code: 3, msg: 'Invalid JSON: expected value at line 1 column 1' } }));
      return;
    }
    const id = req.id ?? null;
    const params = Array.isArray(req.params) ? req.params.filter((p): p is string => typeof p === 'string') : [];
    switch (req.method) {
      case 'SUBSCRIBE':
        for (const p of params) c.streams.add(p.toLowerCase());
        c.ws.send(JSON.stringify({ result: null, id }));
        return;
      case 'UNSUBSCRIBE':
        for (const p of params) c.streams.delete(p.toLowerCase());
        c.ws.send(JSON.stringify({ result: null, id }));
        return;
      case 'LIST_SUBSCRIPTIONS':
        c.ws.send(JSON.stringify({ result: [...c.streams], id }));
        return;
      default:
        c.ws.send(JSON.stringify({ error: { code: 2, msg: `Invalid request: unknown method ${String(req.method)}` }, id }));
    }
  }

  private startPings(): void {
    const every = this.opts.pingIntervalMs ?? 180_000;
    const timeout = this.opts.pongTimeoutMs ?? 600_000;
    this.timers.push(
      setInterval(() => {
        const now = Date.now();
        for (const c of this.clients) {
          if (now - c.lastPong > timeout) {
            c.ws.terminate();
            this.clients.delete(c);
          } else if (c.ws.readyState === WebSocket.OPEN) c.ws.ping();
        }
      }, every),
    );
  }

  // ---- REST ----------------------------------------------------------------------------------

  private onHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(text),
        'X-MBX-USED-WEIGHT-1M': String(this.weight.used),
        ...headers,
      });
      res.end(text);
    };
    const err = (status: number, code: number, msg: string): void => send(status, { code, msg });
    if (this.faults.failRestNow()) {
      const status = this.faults.restStatus;
      const retry = { 'Retry-After': String(this.faults.retryAfterSec) };
      if (status === 418) return send(418, { code: -1003, msg: `Way too many requests; IP(127.0.0.1) banned until ${Date.now() + 1000 * this.faults.retryAfterSec}. Please use the websocket for live updates to avoid bans.` }, retry);
      if (status === 429) return send(429, { code: -1003, msg: 'Too many requests; current limit of IP(127.0.0.1) request weight per minute is 2400. Please use WebSocket Streams for live updates to avoid bans.' }, retry);
      return err(status, -1001, 'Internal error; unable to process your request. Please try again.');
    }
    if (req.method !== 'GET') return err(405, -1000, `An unknown error occurred while processing the request (method ${req.method}).`);
    const weights: Record<string, number> = {
      '/fapi/v1/ping': 1,
      '/fapi/v1/time': 1,
      '/fapi/v1/exchangeInfo': 1,
      '/fapi/v1/trades': 5,
      '/fapi/v1/historicalTrades': 20,
    };
    const w = weights[url.pathname];
    if (w === undefined) return err(404, -1000, `Unknown path ${url.pathname}.`);
    if (!this.chargeWeight(w)) {
      return send(429, { code: -1003, msg: 'Too many requests; current limit of IP(127.0.0.1) request weight per minute is 2400.' }, { 'Retry-After': '60' });
    }
    switch (url.pathname) {
      case '/fapi/v1/ping':
        return send(200, {});
      case '/fapi/v1/time':
        return send(200, { serverTime: Date.now() });
      case '/fapi/v1/exchangeInfo':
        return send(200, exchangeInfoBody([...this.specs.values()]));
    }
    const symbol = url.searchParams.get('symbol');
    if (!symbol) return err(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.");
    const hist = this.history.get(symbol);
    if (!hist) return err(400, -1121, 'Invalid symbol.');
    const limitText = url.searchParams.get('limit');
    const limit = limitText === null ? 500 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1) return err(400, -1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.");
    const n = Math.min(limit, 1000);
    if (url.pathname === '/fapi/v1/trades') return send(200, hist.slice(-n).map(restTrade));
    const key = req.headers['x-mbx-apikey'];
    if (typeof key !== 'string' || key.length === 0) return err(401, -2014, 'API-key format invalid.');
    const fromText = url.searchParams.get('fromId');
    if (fromText === null) return send(200, hist.slice(-n).map(restTrade));
    const fromId = Number(fromText);
    if (!Number.isInteger(fromId) || fromId < 0) return err(400, -1100, "Illegal characters found in parameter 'fromId'; legal range is '^[0-9]{1,20}$'.");
    const first = hist.findIndex((s) => s.p.t >= fromId);
    return send(200, first < 0 ? [] : hist.slice(first, first + n).map(restTrade));
  }

  private chargeWeight(w: number): boolean {
    const minute = Math.floor(Date.now() / 60_000);
    if (minute !== this.weight.minute) this.weight = { minute, used: 0 };
    this.weight.used += w;
    return this.weight.used <= 2400;
  }
}

function routeOf(url: URL): Pick<Client, 'streams' | 'combined' | 'silent'> | undefined {
  const m = /^\/(public|market)?\/?(stream|ws)(?:\/(.*))?$/.exec(url.pathname);
  if (!m) return undefined;
  const silent = m[1] === 'market';
  if (m[2] === 'stream') {
    if (m[3]) return undefined;
    const streams = (url.searchParams.get('streams') ?? '').split('/').filter(Boolean);
    return { streams: new Set(streams.map((s) => s.toLowerCase())), combined: true, silent };
  }
  const streams = (m[3] ?? '').split('/').filter(Boolean);
  return { streams: new Set(streams.map((s) => s.toLowerCase())), combined: false, silent };
}

function restTrade(s: Stored): object {
  const { p } = s;
  const dp = decimalsOf(p.p);
  const dq = decimalsOf(p.q);
  const quote = fromScaled(toScaled(p.p, dp) * toScaled(p.q, dq), dp + dq);
  return { id: p.t, price: p.p, qty: p.q, quoteQty: quote, time: p.T, isBuyerMaker: p.m };
}

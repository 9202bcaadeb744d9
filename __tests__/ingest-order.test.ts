/**
 * The fast path (raw frames parsed and encoded in Rust, `--parse rust`, the default) must put on
 * the wire exactly what the slow path (JSON.parse + Trade objects, `--parse js`) puts there, for
 * every input: the same trades in the same order, the same gap notices, the same counts of
 * duplicates, malformed, unknown and error frames. A real LocalExchange over WebSocket feeds a
 * BinanceSource -> Pipeline -> Encoder wired as startForwarder wires them; what the pipeline
 * publishes is decoded and checked against a model of the source's rules.
 */
import { LocalExchange, type ExchangeAddress } from '../ts/exchange';
import type { TradePayload } from '../ts/exchange/generator';
import { startForwarder, type RunningForwarder } from '../ts/cli/forward';
import { BinanceSource, Decoder, Encoder } from '../ts/index';
import type { DecodedMessage, SourceOptions, SourceStats } from '../ts/index';
import { Pipeline, type Transport } from '../ts/pipeline';
import { toAssetSpec } from '../ts/cli/forward';
import { canon } from './helpers/stream';
import { waitFor } from './source.helpers';

jest.setTimeout(60_000);

type Parse = 'rust' | 'js';
type Seen = { kind: 'trade'; symbol: string; id: number; price: string; qty: string; time: number; maker: boolean } | { kind: 'gap'; symbol: string; lastId: number; nextId: number; reason: string };

const combined = (p: TradePayload): string => `{"stream":"${p.s.toLowerCase()}@trade","data":${JSON.stringify(p)}}`;

/** A transport that keeps what it is given. */
function collector(): Transport & { frames: Buffer[] } {
  const frames: Buffer[] = [];
  return { name: 'collect', frames, publish: (b) => void frames.push(b), consumers: () => 1, drops: () => 0, close: async () => {} };
}

function decode(header: Buffer, frames: Buffer[]): Seen[] {
  const msgs: DecodedMessage[] = new Decoder(header).decodeFrames(Buffer.concat(frames));
  const out: Seen[] = [];
  for (const m of msgs) {
    if (m.kind === 'trade') out.push({ kind: 'trade', symbol: m.symbol, id: m.tradeId ?? -1, price: canon(m.price), qty: canon(m.qty), time: m.time, maker: m.maker });
    else if (m.kind === 'gap') out.push({ kind: 'gap', symbol: m.symbol, lastId: m.lastId, nextId: m.nextId, reason: m.reason });
  }
  return out;
}

/** The source's rules, written down independently: in-order ids, duplicates dropped, holes announced. */
class Model {
  readonly seen: Seen[] = [];
  private readonly last = new Map<string, number>();
  constructor(private readonly symbols: string[]) {}

  frame(p: TradePayload, reason: 'jump' | 'reconnect' = 'jump'): void {
    if (!this.symbols.includes(p.s)) return;
    const last = this.last.get(p.s);
    if (last !== undefined && p.t <= last) return;
    if (last !== undefined && p.t > last + 1) this.seen.push({ kind: 'gap', symbol: p.s, lastId: last, nextId: p.t, reason });
    this.last.set(p.s, p.t);
    this.seen.push({ kind: 'trade', symbol: p.s, id: p.t, price: canon(p.p), qty: canon(p.q), time: p.T, maker: p.m });
  }
}

interface Running {
  pipeline: Pipeline;
  source: BinanceSource;
  header: Buffer;
  out: ReturnType<typeof collector>;
  frameEvents: string[];
  stop(): Promise<void>;
}

/** BinanceSource -> Pipeline -> Encoder -> collector, as startForwarder wires them (plus source options). */
async function forwarder(addr: ExchangeAddress, symbols: string[], parse: Parse, opts: Partial<SourceOptions> = {}): Promise<Running> {
  const source = new BinanceSource({ symbols, wsUrl: addr.wsUrl, restUrl: addr.restUrl, backoffBaseMs: 20, backoffMaxMs: 100, ...opts });
  const infos = await source.prepare();
  const encoder = new Encoder({ wire: 'v2', assets: infos.map((i) => toAssetSpec(i)) });
  const header = encoder.header();
  const out = collector();
  const pipeline = new Pipeline({ source, encoder, transports: [out], heartbeatMs: 0, parse });
  const frameEvents: string[] = [];
  source.on('frame', (text) => frameEvents.push(text));
  await pipeline.start();
  return { pipeline, source, header, out, frameEvents, stop: () => pipeline.stop() };
}

/**
 * A local exchange (rate 0: trades only when the test publishes them, some history first so the
 * references come from REST) and a forwarder connected to it; both stopped after `body`.
 */
async function withForwarder(
  symbols: string[],
  seed: number,
  parse: Parse,
  opts: Partial<SourceOptions>,
  body: (ex: LocalExchange, fwd: Running) => Promise<void>,
): Promise<void> {
  const ex = new LocalExchange({ symbols, rate: 0, seed });
  const addr = await ex.start();
  for (const s of symbols) ex.publish(s, 5);
  const fwd = await forwarder(addr, SYMBOLS, parse, opts);
  try {
    await waitFor(() => ex.clientCount === 1, 5000, 'the connection');
    await body(ex, fwd);
  } finally {
    await fwd.stop();
    await ex.stop();
  }
}

/** Waits until the source delivered `n` trades, and a little more for anything extra to show. */
async function settle(fwd: Running, n: number, what: string): Promise<void> {
  await waitFor(() => fwd.source.stats().trades >= n, 10_000, what);
  await new Promise((r) => setTimeout(r, 50));
}

const counts = (s: SourceStats): Record<string, number> => ({
  trades: s.trades,
  duplicates: s.duplicates,
  gaps: s.gaps,
  missed: s.missed,
  malformed: s.malformed,
  unknownEvents: s.unknownEvents,
  errorFrames: s.errorFrames,
});

const SYMBOLS = ['BTCUSDT', 'ETHUSDT'];

/**
 * Everything the source must sort out, sent over one connection in one go (so fast runs and
 * irregular frames share socket reads): regular runs, duplicates, a jump, garbage, an error frame,
 * a trade of an unsubscribed symbol, frames that JSON.parse reads as trades but the fast parser
 * leaves to the slow path (escaped price, float times), and a bare payload and an unknown key,
 * which both read as trades.
 */
function script(ex: LocalExchange, model: Model): void {
  const last = new Map<string, TradePayload>();
  let time = 1_723_100_000_000;
  const pub = (sym: string, n = 1): TradePayload[] => {
    // A fixed clock, so two runs send the same frames.
    time += 3;
    const ps = ex.publish(sym, n, time);
    for (const p of ps) {
      model.frame(p);
      last.set(p.s, p);
    }
    return ps;
  };
  /** The symbol's next trade, not published: its id is taken from the exchange's walk. */
  const nextOf = (symbol: string): TradePayload => {
    const l = last.get(symbol) as TradePayload;
    ex.skipIds(symbol, 1);
    const p = { ...l, t: l.t + 1, E: l.E + 1, T: l.T + 1 };
    last.set(symbol, p);
    return p;
  };
  const raw = (frames: string[], payloads: (TradePayload | undefined)[]): void => {
    ex.sendGarbage(frames);
    for (const p of payloads) if (p) model.frame(p);
  };
  const regular = (n: number): TradePayload[] => {
    const all: TradePayload[] = [];
    for (let i = 0; i < n; i++) all.push(...pub(SYMBOLS[i % 2]));
    return all;
  };
  // First trade of each symbol (slow), then a regular run.
  const first = regular(300);
  // Duplicates: the last few again, and one from long ago.
  const dups = [first[first.length - 1], first[first.length - 2], first[10]];
  raw(dups.map(combined), dups);
  regular(50);
  // A jump in BTC ids.
  ex.skipIds('BTCUSDT', 4);
  regular(40);
  // Garbage of every kind (malformed, not a trade, error and result frames, a binary frame).
  raw(['not json {', '[]', 'null', '{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":"oops"}}', '{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","s":"BTCUSDT"}}', '{"error":{"code":2,"msg":"Invalid request"},"id":null}', '{"result":null,"id":1}'], []);
  regular(30);
  // A trade of a symbol we did not subscribe (the exchange sends SOL only on request: crafted).
  const [sol] = ex.publish('SOLUSDT', 1, time);
  raw([combined(sol)], []);
  // Valid to JSON.parse, irregular to the fast parser: the slow path takes them, in order.
  const e1 = nextOf('ETHUSDT');
  const escaped = combined(e1).replace(`"p":"${e1.p}"`, `"p":"\\u00${e1.p.charCodeAt(0).toString(16)}${e1.p.slice(1)}"`);
  raw([escaped], [e1]);
  const e2 = nextOf('ETHUSDT');
  raw([JSON.stringify(e2)], [e2]); // bare payload: regular for both
  const e3 = nextOf('ETHUSDT');
  raw([combined(e3).replace('"m":', '"st":1,"m":')], [e3]);
  const e4 = nextOf('ETHUSDT');
  raw([combined(e4).replace(`"T":${e4.T}`, `"T":${e4.T}.0`)], [e4]);
  regular(200);
}

async function runScript(parse: Parse): Promise<{ seen: Seen[]; model: Seen[]; stats: Record<string, number>; fast: number; frames: string[]; delivered: number }> {
  let result: Awaited<ReturnType<typeof runScript>> | undefined;
  await withForwarder(['BTCUSDT', 'ETHUSDT', 'SOLUSDT'], 11, parse, {}, async (ex, fwd) => {
    const model = new Model(SYMBOLS);
    script(ex, model);
    const want = model.seen.filter((s) => s.kind === 'trade').length;
    await settle(fwd, want, `${want} trades`);
    const seen = decode(fwd.header, fwd.out.frames);
    result = { seen, model: model.seen, stats: counts(fwd.source.stats()), fast: fwd.pipeline.fastTrades, frames: fwd.frameEvents, delivered: want };
  });
  if (!result) throw new Error('no result');
  return result;
}

describe('fast path (Rust parse) against slow path (JSON.parse)', () => {
  it('puts the same trades and gap notices on the wire, in the same order, with the same counts', async () => {
    const js = await runScript('js');
    const rust = await runScript('rust');
    expect(js.seen).toEqual(js.model);
    expect(rust.seen).toEqual(rust.model);
    expect(rust.seen).toEqual(js.seen);
    expect(rust.stats).toEqual(js.stats);
    expect(js.stats).toEqual(expect.objectContaining({ duplicates: 3, gaps: 1, missed: 4, unknownEvents: 2, errorFrames: 1 }));
    // The fast path did the bulk; the slow path none of it with --parse js.
    expect(js.fast).toBe(0);
    expect(rust.fast).toBeGreaterThan(0.9 * rust.delivered);
    expect(rust.fast).toBeLessThan(rust.delivered);
    // 'frame' (what `record` writes) fires for every delivered trade on both paths, in order.
    expect(rust.frames).toHaveLength(rust.delivered);
    const ids = (fs: string[]): number[] => fs.map((f) => {
      const o = JSON.parse(f) as { data?: { t: number }; t?: number };
      return o.data?.t ?? o.t ?? -1;
    });
    expect(ids(rust.frames)).toEqual(ids(js.frames));
  });

  it.each(['rust', 'js'] as Parse[])('reconnect window: a gap notice (reason reconnect), nothing else lost (%s)', async (parse) => {
    await withForwarder(SYMBOLS, 5, parse, {}, async (ex, fwd) => {
      const model = new Model(SYMBOLS);
      const pub = (n: number, reason: 'jump' | 'reconnect' = 'jump'): void => {
        for (let i = 0; i < n; i++) for (const p of ex.publish(SYMBOLS[i % 2], 1)) model.frame(p, reason);
      };
      pub(100);
      await settle(fwd, 100, 'the first 100');
      ex.dropClients();
      await waitFor(() => ex.clientCount === 0, 5000, 'the drop');
      const lost = ex.publish('BTCUSDT', 7).concat(ex.publish('ETHUSDT', 3));
      expect(lost).toHaveLength(10);
      await waitFor(() => ex.clientCount === 1 && fwd.source.stats().connections === 1, 5000, 'the reconnection');
      // Give the new connection's subscription time to settle before publishing.
      await new Promise((r) => setTimeout(r, 50));
      pub(2, 'reconnect');
      pub(200);
      await settle(fwd, 302, 'every trade after the reconnect');
      // A reconnect that loses nothing: no gap, and the window it opened closes with the next
      // trade, so a later jump is a 'jump' (the window flag must hold that trade to the slow path).
      ex.dropClients();
      await waitFor(() => ex.clientCount === 0, 5000, 'the second drop');
      await waitFor(() => ex.clientCount === 1 && fwd.source.stats().connections === 1, 5000, 'the second reconnection');
      await new Promise((r) => setTimeout(r, 50));
      pub(20);
      ex.skipIds('BTCUSDT', 3);
      pub(20);
      await settle(fwd, 342, 'every trade after the second reconnect');
      expect(decode(fwd.header, fwd.out.frames)).toEqual(model.seen);
      expect(fwd.source.stats().gaps).toBe(3);
      if (parse === 'rust') expect(fwd.pipeline.fastTrades).toBeGreaterThan(250);
    });
  });

  it.each(['rust', 'js'] as Parse[])('backfill (API key): the hole is announced, then filled in order before the live trades (%s)', async (parse) => {
    await withForwarder(SYMBOLS, 13, parse, { apiKey: 'test-key' }, async (ex, fwd) => {
      const want = new Map<string, Seen[]>(SYMBOLS.map((s) => [s, []]));
      const add = (p: TradePayload): void => void want.get(p.s)?.push({ kind: 'trade', symbol: p.s, id: p.t, price: canon(p.p), qty: canon(p.q), time: p.T, maker: p.m });
      const pub = (n: number): TradePayload[] => {
        const out: TradePayload[] = [];
        for (let i = 0; i < n; i++) out.push(...ex.publish(SYMBOLS[i % 2], 1));
        return out;
      };
      pub(100).forEach(add);
      await settle(fwd, 100, 'the first 100');
      ex.dropClients();
      await waitFor(() => ex.clientCount === 0, 5000, 'the drop');
      const lost = [...ex.publish('BTCUSDT', 7), ...ex.publish('ETHUSDT', 3)];
      await waitFor(() => ex.clientCount === 1 && fwd.source.stats().connections === 1, 5000, 'the reconnection');
      await new Promise((r) => setTimeout(r, 50));
      for (const s of SYMBOLS) {
        const before = want.get(s) as Seen[];
        const last = before[before.length - 1] as { id: number };
        const mine = lost.filter((p) => p.s === s);
        before.push({ kind: 'gap', symbol: s, lastId: last.id, nextId: mine[mine.length - 1].t + 1, reason: 'reconnect' });
        mine.forEach(add);
      }
      pub(200).forEach(add);
      await settle(fwd, 310, 'every trade, backfilled ones included');
      // The frames that came during the backfill were queued by the slow path; after it, fast again.
      pub(100).forEach(add);
      await settle(fwd, 410, 'the trades after the backfill');
      // Per symbol (the two backfills run concurrently): the gap notice, the filled hole, the rest.
      const seen = decode(fwd.header, fwd.out.frames);
      for (const s of SYMBOLS) expect(seen.filter((e) => e.symbol === s)).toEqual(want.get(s));
      expect(fwd.source.stats().backfilled).toBe(10);
      if (parse === 'rust') expect(fwd.pipeline.fastTrades).toBeGreaterThanOrEqual(98 + 100);
    });
  });

  it('a rotation (make-before-break, overlapping connections) loses and repeats nothing on the fast path', async () => {
    await withForwarder(SYMBOLS, 9, 'rust', { rotationMs: 150, rotationOverlapMs: 2000 }, async (ex, fwd) => {
      let rotations = 0;
      fwd.source.on('rotate', () => (rotations += 1));
      const model = new Model(SYMBOLS);
      // ~1 s of trades, 20 per 5 ms, across at least two rotations.
      for (let k = 0; k < 200 && (k < 60 || rotations < 2); k++) {
        for (let i = 0; i < 20; i++) for (const p of ex.publish(SYMBOLS[i % 2], 1)) model.frame(p);
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(rotations).toBeGreaterThanOrEqual(2);
      const want = model.seen.length;
      await settle(fwd, want, `${want} trades`);
      const seen = decode(fwd.header, fwd.out.frames);
      expect(seen).toEqual(model.seen);
      // No gap, no trade twice (both connections carried the overlap; which one's copy is dropped,
      // as a duplicate or as a closing connection's frame, depends on timing).
      expect(seen.every((s) => s.kind === 'trade')).toBe(true);
      expect(fwd.pipeline.fastTrades).toBeGreaterThan(want / 4);
    });
  });

  it('startForwarder takes --parse: the default is the fast path, js is the slow path', async () => {
    const ex = new LocalExchange({ symbols: SYMBOLS, rate: 0, seed: 3 });
    const addr = await ex.start();
    for (const s of SYMBOLS) ex.publish(s, 5);
    const runs: RunningForwarder[] = [];
    try {
      for (const parse of [undefined, 'js']) {
        const out = collector();
        const fwd = await startForwarder(
          { assets: SYMBOLS, 'ws-url': addr.wsUrl, 'rest-url': addr.restUrl, 'stats-interval': 0, 'heartbeat-ms': 0, 'log-level': 'error', parse },
          async () => out,
        );
        runs.push(fwd);
      }
      await waitFor(() => ex.clientCount === 2, 5000, 'both connections');
      for (let i = 0; i < 100; i++) ex.publish(SYMBOLS[i % 2], 1);
      await waitFor(() => runs.every((r) => r.stats.snapshot().trades === 100), 5000, 'every trade on both');
      expect(runs[0].pipeline.fastTrades).toBe(98);
      expect(runs[1].pipeline.fastTrades).toBe(0);
    } finally {
      for (const r of runs) await r.stop();
      await ex.stop();
    }
  });
});

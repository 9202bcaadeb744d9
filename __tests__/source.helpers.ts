/** Shared by the source and exchange tests: fixture location, a local exchange, waiting. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BinanceSource, LocalExchange } from '../ts/index';
import type { ExchangeOptions, ExchangeAddress, SourceOptions, Trade, GapEvent } from '../ts/index';

export const repoRoot = path.resolve(__dirname, '..');

/** PERP_SIGNAL_SHARED, else <repo>/../shared (CI), else /work/shared. */
export function sharedDir(): string {
  const candidates = [process.env.PERP_SIGNAL_SHARED, path.join(repoRoot, '..', 'shared'), '/work/shared'];
  for (const c of candidates) if (c && fs.existsSync(path.join(c, 'fixtures'))) return c;
  throw new Error(`shared fixtures not found (tried ${candidates.filter(Boolean).join(', ')}); set PERP_SIGNAL_SHARED`);
}

export const fixtureFile = (): string => path.join(sharedDir(), 'fixtures', 'binance-usdm-btcusdt-trades-20240808.txt.gz');

/** Polls `cond` every 10 ms; fails with `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Everything a test started, stopped in afterEach. */
export class Harness {
  exchanges: LocalExchange[] = [];
  sources: BinanceSource[] = [];

  async exchange(opts: ExchangeOptions = {}): Promise<{ ex: LocalExchange; addr: ExchangeAddress }> {
    const ex = new LocalExchange({ seed: 7, ...opts });
    this.exchanges.push(ex);
    const addr = await ex.start();
    return { ex, addr };
  }

  /** A source pointed at `addr` with short, test-sized periods. */
  source(addr: ExchangeAddress, opts: Partial<SourceOptions> = {}): Recorder {
    const src = new BinanceSource({
      symbols: ['BTCUSDT'],
      wsUrl: addr.wsUrl,
      restUrl: addr.restUrl,
      backoffBaseMs: 20,
      backoffMaxMs: 200,
      restBackoffMs: 20,
      ...opts,
    });
    this.sources.push(src);
    return new Recorder(src);
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.stop()));
    await Promise.all(this.exchanges.map((e) => e.stop()));
    this.sources = [];
    this.exchanges = [];
  }
}

/** Collects what a source emits, in order. */
export class Recorder {
  trades: Trade[] = [];
  gaps: GapEvent[] = [];
  /** Trades and gaps interleaved, as emitted. */
  events: (Trade | GapEvent)[] = [];
  reconnectReasons: string[] = [];
  rotations = 0;

  constructor(readonly source: BinanceSource) {
    source.on('trade', (t) => {
      this.trades.push(t);
      this.events.push(t);
    });
    source.on('gap', (g) => {
      this.gaps.push(g);
      this.events.push(g);
    });
    source.on('reconnect', (r) => this.reconnectReasons.push(r.reason));
    source.on('rotate', () => (this.rotations += 1));
  }

  ids(symbol = 'BTCUSDT'): number[] {
    return this.trades.filter((t) => t.symbol === symbol).map((t) => t.tradeId);
  }
}

/**
 * Checks the stream of one symbol is strictly increasing and that every hole in it is announced
 * by a gap event (lastId, nextId) emitted right before the trade after the hole.
 */
export function expectHolesAnnounced(rec: Recorder, symbol = 'BTCUSDT'): { holes: number } {
  let last: number | undefined;
  let pendingGap: GapEvent | undefined;
  let holes = 0;
  for (const e of rec.events) {
    if (e.symbol !== symbol) continue;
    if ('reason' in e) {
      pendingGap = e;
      continue;
    }
    if (last !== undefined) {
      expect(e.tradeId).toBeGreaterThan(last);
      if (e.tradeId !== last + 1) {
        holes += 1;
        expect(pendingGap).toEqual(expect.objectContaining({ symbol, lastId: last, nextId: e.tradeId }));
      }
    }
    pendingGap = undefined;
    last = e.tradeId;
  }
  return { holes };
}

/**
 * Counters and latency histograms of the forwarder, read by the periodic stats line and by the
 * Prometheus endpoint. Recording is allocation-free on the per-trade path.
 */
import { LatencyHistogram } from './histogram';
import type { Logger } from './logger';
import type { Handoff } from '../pipeline';

interface SymbolCounters {
  trades: number;
  tradesAtLastLine: number;
  gaps: number;
}

export interface StatsSnapshot {
  uptimeS: number;
  trades: number;
  perSymbol: Record<string, { trades: number; ratePerS: number; gaps: number }>;
  gaps: number;
  reconnects: number;
  drops: number;
  consumers: number;
  /** Exchange trade time (T) to hand-off, ms. Includes clock offset between us and the exchange. */
  exchangeToHandoffMs: { p50: number; p99: number };
  /** Local receive (monotonic) to hand-off, µs. The latency we add. */
  receiveToHandoffUs: { p50: number; p99: number; p999: number };
}

export interface StatsSources {
  consumers(): number;
  drops(): number;
  reconnects(): number;
}

/** Listener for per-trade observations (the metrics endpoint registers one). */
export type TradeObserver = (symbol: string, exchangeMs: number, receiveNs: number) => void;

export class Stats {
  private readonly symbols = new Map<string, SymbolCounters>();
  private readonly started = Date.now();
  private lastLineAt = Date.now();
  private totalTrades = 0;
  private totalGaps = 0;
  /** Per stats interval; reset after each line so the line reports recent behaviour. */
  readonly exchangeToHandoff = new LatencyHistogram();
  readonly receiveToHandoff = new LatencyHistogram();
  private observers: TradeObserver[] = [];
  private byAssetOf?: readonly string[];
  private byAsset: (SymbolCounters | undefined)[] = [];
  sources: StatsSources = { consumers: () => 0, drops: () => 0, reconnects: () => 0 };

  constructor(symbols: readonly string[]) {
    for (const s of symbols) this.symbols.set(s, { trades: 0, tradesAtLastLine: 0, gaps: 0 });
  }

  observe(fn: TradeObserver): void {
    this.observers.push(fn);
  }

  /** Trades handed to the transports (the pipeline's 'handoff' event); `symbols` = `pipeline.symbols`. */
  handoff(h: Handoff, symbols: readonly string[]): void {
    const wall = Date.now();
    const counters = this.countersFor(symbols);
    const observed = this.observers.length > 0;
    for (let i = 0; i < h.count; i++) {
      const a = h.asset[i];
      const c = counters[a];
      if (c) c.trades += 1;
      const exchangeMs = wall - h.tradeTime[i];
      const receiveNs = h.sentMonoNs - h.recvMonoNs[i];
      this.exchangeToHandoff.record(exchangeMs < 0 ? 0 : exchangeMs);
      this.receiveToHandoff.record(receiveNs);
      if (observed) for (const o of this.observers) o(symbols[a] ?? '?', exchangeMs, receiveNs);
    }
    this.totalTrades += h.count;
  }

  /** Counters in the pipeline's asset order (cached per symbols array). */
  private countersFor(symbols: readonly string[]): (SymbolCounters | undefined)[] {
    if (this.byAssetOf !== symbols) {
      this.byAssetOf = symbols;
      this.byAsset = symbols.map((s) => this.symbols.get(s));
    }
    return this.byAsset;
  }

  gap(symbol: string): void {
    const c = this.symbols.get(symbol);
    if (c) c.gaps += 1;
    this.totalGaps += 1;
  }

  snapshot(): StatsSnapshot {
    const now = Date.now();
    const dt = Math.max(1, now - this.lastLineAt) / 1000;
    const perSymbol: StatsSnapshot['perSymbol'] = {};
    for (const [s, c] of this.symbols) {
      perSymbol[s] = { trades: c.trades, ratePerS: (c.trades - c.tradesAtLastLine) / dt, gaps: c.gaps };
    }
    const r = this.receiveToHandoff;
    return {
      uptimeS: (now - this.started) / 1000,
      trades: this.totalTrades,
      perSymbol,
      gaps: this.totalGaps,
      reconnects: this.sources.reconnects(),
      drops: this.sources.drops(),
      consumers: this.sources.consumers(),
      exchangeToHandoffMs: { p50: this.exchangeToHandoff.quantile(0.5), p99: this.exchangeToHandoff.quantile(0.99) },
      receiveToHandoffUs: { p50: r.quantile(0.5) / 1000, p99: r.quantile(0.99) / 1000, p999: r.quantile(0.999) / 1000 },
    };
  }

  /** Writes the stats line and starts a new interval. */
  logLine(logger: Logger, structured = false): StatsSnapshot {
    const s = this.snapshot();
    const rates = Object.entries(s.perSymbol)
      .map(([sym, v]) => `${sym}=${v.ratePerS.toFixed(1)}/s`)
      .join(' ');
    const fmt = (n: number, d = 1): string => (Number.isNaN(n) ? '-' : n.toFixed(d));
    logger.info(
      `stats ${rates} consumers=${s.consumers} drops=${s.drops} reconnects=${s.reconnects} gaps=${s.gaps} ` +
        `exch->out p50/p99=${fmt(s.exchangeToHandoffMs.p50, 0)}/${fmt(s.exchangeToHandoffMs.p99, 0)}ms ` +
        `recv->out p50/p99=${fmt(s.receiveToHandoffUs.p50)}/${fmt(s.receiveToHandoffUs.p99)}us`,
      // Text logs carry the numbers in the message; JSON logs also get them as fields.
      structured ? { stats: s } : undefined,
    );
    this.lastLineAt = Date.now();
    for (const c of this.symbols.values()) c.tradesAtLastLine = c.trades;
    this.exchangeToHandoff.reset();
    this.receiveToHandoff.reset();
    return s;
  }
}

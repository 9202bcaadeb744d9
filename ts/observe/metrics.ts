/**
 * Prometheus endpoint (`--metrics-port`): the stats line's counters and latency histograms, scraped
 * at GET /metrics. Counters are read from their owners at scrape time, so the trade path pays only
 * for the two histogram observations.
 */
import * as http from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { PerpSignalError } from '../errors';
import type { Stats } from './stats';

export class MetricsServer {
  readonly registry = new Registry();
  private server?: http.Server;

  constructor(stats: Stats) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'perp_signal_process_' });
    const trades = new Counter({
      name: 'perp_signal_trades_total',
      help: 'Trades handed to the transports, per symbol.',
      labelNames: ['symbol'],
      registers: [r],
    });
    const exch = new Histogram({
      name: 'perp_signal_exchange_to_handoff_seconds',
      help: 'Exchange trade time (T) to hand-off to the transports; includes clock offset.',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
      registers: [r],
    });
    const recv = new Histogram({
      name: 'perp_signal_receive_to_handoff_seconds',
      help: 'Local WebSocket receive to hand-off to the transports: the latency the forwarder adds.',
      buckets: [1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 1e-2],
      registers: [r],
    });
    stats.observe((symbol, exchangeMs, receiveNs) => {
      trades.inc({ symbol });
      exch.observe(exchangeMs / 1000);
      recv.observe(receiveNs / 1e9);
    });
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          this.set(read());
        },
      });
    };
    // Totals kept by their owners, exposed as Prometheus counters (`rate()` works, and a `_total`
    // name is a counter by convention): set from the owner's count at each scrape.
    const total = (name: string, help: string, read: () => number): void => {
      new Counter({
        name,
        help,
        registers: [r],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    };
    gauge('perp_signal_consumers', 'Connected consumers.', () => stats.sources.consumers());
    total('perp_signal_drops_total', 'Frames dropped for slow consumers or a full ring.', () => stats.sources.drops());
    total('perp_signal_reconnects_total', 'Exchange WebSocket reconnects.', () => stats.sources.reconnects());
    total('perp_signal_gaps_total', 'Gap events (missing trade ids).', () => stats.snapshot().gaps);
  }

  listen(port: number, host = '0.0.0.0'): Promise<number> {
    const server = http.createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('not found: metrics are at /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (e: Error) => res.writeHead(500).end(e.message),
      );
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new PerpSignalError(
            e.code === 'EADDRINUSE' ? 'E_ADDR_IN_USE' : 'E_BIND',
            `cannot serve metrics on ${host}:${port}: ${e.code === 'EADDRINUSE' ? 'the port is already in use' : e.message}; choose another --metrics-port`,
          ),
        ),
      );
      server.listen(port, host, () => {
        const a = server.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }

  close(): Promise<void> {
    const s = this.server;
    if (!s) return Promise.resolve();
    return new Promise((resolve) => s.close(() => resolve()));
  }
}

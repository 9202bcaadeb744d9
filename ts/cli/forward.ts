/**
 * The forwarder: `perp-signal --assets ... <tcp|shm|nats> [options]`. One runner for every
 * transport, so every mode goes through the same source -> codec -> transport code.
 *
 * Start-up order lets every mistake surface before anything is half-started: flags -> exchangeInfo
 * validates the symbols and gives the scales (REST) -> reference prices -> the encoder (v1 refuses
 * symbols it cannot carry exactly) -> the transport binds (busy port, bad queue name) -> only then
 * the exchange WebSocket.
 */
import type { Argv, Options } from 'yargs';
import { BinanceSource, endpointOptions, resolveEndpoints, apiKeyOption, resolveApiKey } from '../source';
import { Encoder, type AssetSpec, type WireVersion } from '../codec';
import { Pipeline, type Transport } from '../pipeline';
import { Stats } from '../observe/stats';
import { MetricsServer } from '../observe/metrics';
import type { Logger } from '../observe/logger';
import type { GapEvent, SymbolInfo, Trade } from '../types';
import { checkRange, loggerFrom, parseAssets, type LogArgs } from './options';

export const forwarderOptions = {
  assets: {
    type: 'string',
    array: true,
    describe: 'Symbols to forward (required): comma list and/or repeated, any case, e.g. BTCUSDT,ethusdt',
  },
  wire: { choices: ['v2', 'v1'], default: 'v2', describe: 'Wire format: v2 (lossless, default) or v1 (original)' },
  'stats-interval': { type: 'number', default: 10, describe: 'Seconds between stats lines on stderr; 0 = off' },
  'metrics-port': { type: 'number', describe: 'Serve Prometheus metrics on this port at /metrics (default: off)' },
  parse: {
    choices: ['rust', 'js'],
    default: 'rust',
    describe: "Where the exchange's JSON is parsed: rust (regular trade frames parsed and encoded in one native call) or js (JSON.parse per frame)",
  },
  'ws-client': {
    choices: ['builtin', 'ws'],
    default: 'builtin',
    describe: "WebSocket client for the exchange stream: builtin (our RFC 6455 reader, the faster) or ws (the ws package)",
  },
  'heartbeat-ms': {
    type: 'number',
    default: 1000,
    describe: 'v2: heartbeat after this many ms without a frame; 0 = off',
  },
} satisfies Record<string, Options>;

export interface ForwarderArgs extends LogArgs {
  assets?: string[];
  wire?: string;
  'stats-interval'?: number;
  'metrics-port'?: number;
  'heartbeat-ms'?: number;
  parse?: string;
  'ws-client'?: string;
  'ws-url'?: string;
  'rest-url'?: string;
  'api-key'?: string;
}

/** Adds the forwarder's options (and the exchange endpoints) to a transport command. */
export function withForwarderOptions<T>(y: Argv<T>): Argv<T & ForwarderArgs> {
  return y
    .options(forwarderOptions)
    .options(endpointOptions)
    .options(apiKeyOption)
    .check((a) => {
      checkRange('stats-interval', a['stats-interval'], 0);
      checkRange('metrics-port', a['metrics-port'], 0, 65535, true);
      checkRange('heartbeat-ms', a['heartbeat-ms'], 0);
      return true;
    }) as unknown as Argv<T & ForwarderArgs>;
}

/** Decimals as the exchange writes the filter ("0.10" -> 2), so v2 reproduces its strings exactly. */
export function decimalsOf(step: string): number {
  const dot = step.indexOf('.');
  return dot < 0 ? 0 : step.length - dot - 1;
}

export function toAssetSpec(info: SymbolInfo, first?: Trade): AssetSpec {
  return {
    symbol: info.symbol,
    refPrice: info.refPrice ?? first?.price ?? '0',
    refQty: info.refQty ?? first?.qty ?? '0',
    priceScale: decimalsOf(info.tickSize),
    qtyScale: decimalsOf(info.stepSize),
  };
}

export interface Transportish extends Transport {
  /** Human-readable address for the start-up log line. */
  readonly where?: string;
}

/** Builds the transport once the encoder exists; may throw usage errors (busy port: exit 2). */
export type TransportFactory = (encoder: Encoder, logger: Logger) => Promise<Transportish>;

export interface RunningForwarder {
  pipeline: Pipeline;
  source: BinanceSource;
  encoder: Encoder;
  transport: Transportish;
  stats: Stats;
  /** Stops everything in order: source, flush, transport, metrics, timers. */
  stop(): Promise<void>;
}

/**
 * Trades of symbols whose REST reference failed are held until each of them has traded once: that
 * first live trade becomes its reference (never a zero price). Returns what arrived meanwhile; it
 * keeps holding what arrives next (the source is running) until `release()`, which the caller
 * calls in the same tick as it attaches the pipeline, so no trade falls between the two.
 */
async function firstTradesOf(
  source: BinanceSource,
  missing: Set<string>,
  logger: Logger,
): Promise<{ first: Map<string, Trade>; held: (Trade | GapEvent)[]; release: () => void }> {
  const first = new Map<string, Trade>();
  const held: (Trade | GapEvent)[] = [];
  logger.warn('no REST reference for some symbols; they start from their first live trade', {
    symbols: [...missing],
  });
  const onGap = (g: GapEvent): void => {
    held.push(g);
  };
  let onTrade: (t: Trade) => void = () => {};
  const release = (): void => {
    source.off('trade', onTrade);
    source.off('gap', onGap);
  };
  await new Promise<void>((resolve, reject) => {
    onTrade = (t: Trade): void => {
      held.push(t);
      if (missing.has(t.symbol) && !first.has(t.symbol)) first.set(t.symbol, t);
      if (first.size === missing.size) resolve();
    };
    source.on('trade', onTrade);
    source.on('gap', onGap);
    source.start().catch((e: unknown) => {
      release();
      reject(e);
    });
  });
  return { first, held, release };
}

export async function startForwarder(
  argv: ForwarderArgs,
  makeTransport: TransportFactory,
  logger: Logger = loggerFrom(argv),
): Promise<RunningForwarder> {
  const wire = (argv.wire ?? 'v2') as WireVersion;
  const symbols = parseAssets(argv.assets, wire);
  const { wsUrl, restUrl } = resolveEndpoints(argv);
  const wsClient = argv['ws-client'] === 'ws' ? 'ws' : 'builtin';
  const source = new BinanceSource({ symbols, wsUrl, restUrl, apiKey: resolveApiKey(argv), logger, wsClient });
  // The source logs its own warnings, reconnects and gaps through `logger`: no listener repeats them.

  const infos = await source.prepare();
  const missing = new Set(infos.filter((i) => i.refPrice === undefined).map((i) => i.symbol));
  let held: (Trade | GapEvent)[] = [];
  let first = new Map<string, Trade>();
  // Set when the source already runs: trades keep being held until the pipeline takes over.
  let release = (): void => {};
  if (missing.size > 0) ({ first, held, release } = await firstTradesOf(source, missing, logger));

  const encoder = new Encoder({ wire, assets: infos.map((i) => toAssetSpec(i, first.get(i.symbol))) });
  let transport: Transportish;
  try {
    transport = await makeTransport(encoder, logger);
  } catch (e) {
    await source.stop();
    throw e;
  }

  const stats = new Stats(symbols);
  stats.sources = {
    consumers: () => transport.consumers(),
    drops: () => transport.drops(),
    reconnects: () => source.stats().reconnects,
  };
  let metrics: MetricsServer | undefined;
  if (argv['metrics-port'] !== undefined) {
    metrics = new MetricsServer(stats);
    try {
      const port = await metrics.listen(argv['metrics-port']);
      logger.info('metrics at /metrics', { port });
    } catch (e) {
      await Promise.all([source.stop(), transport.close()]);
      throw e;
    }
  }

  const pipeline = new Pipeline({
    source,
    encoder,
    transports: [transport],
    stats,
    heartbeatMs: argv['heartbeat-ms'] ?? 1000,
    logger,
    parse: argv.parse === 'js' ? 'js' : 'rust',
  });
  // Same tick: stop holding, pass on what was held, attach the pipeline (no trade in between).
  release();
  for (const item of held) pipeline.feed(item);
  await pipeline.start({ startSource: missing.size === 0 });
  logger.info('forwarding', { symbols, wire, to: transport.where ?? transport.name, ws: wsUrl });

  const every = argv['stats-interval'] ?? 10;
  const timer = every > 0 ? setInterval(() => stats.logLine(logger, argv['log-format'] === 'json'), every * 1000) : undefined;
  timer?.unref();

  let stopping: Promise<void> | undefined;
  return {
    pipeline,
    source,
    encoder,
    transport,
    stats,
    stop: () =>
      (stopping ??= (async () => {
        if (timer) clearInterval(timer);
        await pipeline.stop();
        await metrics?.close();
      })()),
  };
}

/** Runs until SIGINT/SIGTERM, then stops cleanly (exit 0). */
export async function runForwarder(argv: ForwarderArgs, makeTransport: TransportFactory): Promise<void> {
  const logger = loggerFrom(argv);
  const fwd = await startForwarder(argv, makeTransport, logger);
  await new Promise<void>((resolve) => {
    const onSignal = (sig: string): void => {
      logger.info(`${sig}: stopping`);
      resolve();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  await fwd.stop();
  logger.info('stopped', { trades: fwd.stats.snapshot().trades });
}

/**
 * `perp-signal demo` (README command one): the whole product on one machine, offline. A local
 * simulated exchange on 127.0.0.1, the forwarder (same code path as `tcp`) and a TCP client that
 * prints the decoded trades; stats lines on stderr. Ctrl-C stops all of it and leaves nothing
 * behind: everything runs in this one process, on loopback, with no file in /dev/shm.
 */
import type { CommandModule } from 'yargs';
import { LocalExchange } from '../exchange';
import { TcpFanout } from '../transports/tcp';
import { connect } from '../clients/tcp';
import { startForwarder } from './forward';
import { checkPositive, checkRange, loggerFrom, parseAssets, type LogArgs } from './options';
import { formatEvent } from './tcp-client';

interface Args extends LogArgs {
  assets?: string[];
  wire: string;
  rate: number;
  json: boolean;
  duration?: number;
  'stats-interval': number;
}

export const demoCommand: CommandModule<object, Args> = {
  command: 'demo',
  describe: 'Run everything offline: a simulated exchange, the forwarder and a client printing decoded trades',
  builder: (y) =>
    y
      .option('assets', {
        type: 'string',
        array: true,
        describe:
          'Symbols the simulated exchange trades and the forwarder forwards (default: BTCUSDT,ETHUSDT,SOLUSDT,1000SATSUSDT; ' +
          'with --wire v1 without 1000SATSUSDT, whose 7 decimals v1 cannot carry)',
      })
      .option('wire', { choices: ['v2', 'v1'], default: 'v2', describe: 'Wire format between forwarder and client' })
      .option('rate', { type: 'number', default: 5, describe: 'Simulated trades per second per symbol' })
      .option('json', { type: 'boolean', default: false, describe: 'Print trades as JSON lines' })
      .option('stats-interval', { type: 'number', default: 5, describe: 'Seconds between stats lines; 0 = off' })
      .option('duration', { type: 'number', describe: 'Stop after this many seconds (default: until Ctrl-C)' })
      .check((a) => {
        checkPositive('rate', a.rate);
        checkRange('stats-interval', a['stats-interval'], 0);
        checkPositive('duration', a.duration);
        return true;
      }) as never,
  handler: async (a) => {
    const logger = loggerFrom(a);
    // Checked (and duplicates folded) before anything starts.
    const wire = a.wire === 'v1' ? 'v1' : 'v2';
    const symbols = parseAssets(a.assets ?? ['BTCUSDT,ETHUSDT,SOLUSDT', ...(wire === 'v2' ? ['1000SATSUSDT'] : [])], wire);
    // Past trades: the forwarder takes its reference prices from them, as it does from Binance.
    const exchange = new LocalExchange({ symbols, rate: a.rate, logger, pastTrades: 100 });
    const { wsUrl, restUrl } = await exchange.start();
    logger.info('simulated exchange up', { ws: wsUrl, rest: restUrl });
    let fanout: TcpFanout | undefined;
    const fwd = await startForwarder(
      {
        ...a,
        assets: symbols,
        'ws-url': wsUrl,
        'rest-url': restUrl,
        'stats-interval': a['stats-interval'],
        'heartbeat-ms': 1000,
      },
      async (encoder, log) => {
        fanout = new TcpFanout({ host: '127.0.0.1', port: 0, heartbeatMs: 0, encoder, logger: log });
        await fanout.listen();
        return fanout;
      },
      logger,
    ).catch(async (e: unknown) => {
      await exchange.stop();
      throw e;
    });
    const port = Number(/:(\d+)$/.exec(fanout?.where ?? '')?.[1]);
    const client = connect({ host: '127.0.0.1', port, logger });
    const printing = (async () => {
      for await (const ev of client) {
        const line = formatEvent(ev, a.json, Date.now());
        if (line !== undefined) process.stdout.write(line + '\n');
      }
    })();
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
      if (a.duration !== undefined) setTimeout(resolve, a.duration * 1000).unref();
    });
    logger.info('stopping: client, forwarder, exchange');
    client.close();
    await printing.catch(() => undefined);
    await fwd.stop();
    await exchange.stop();
    logger.info('stopped', { trades: fwd.stats.snapshot().trades });
  },
};

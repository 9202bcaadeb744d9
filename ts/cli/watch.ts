/** `perp-signal watch`: prints live trades and, every --count-interval seconds (a minute by default), a count per symbol (the original's binance-websockets). */
import type { CommandModule } from 'yargs';
import { BinanceSource, endpointOptions, resolveEndpoints } from '../source';
import { checkPositive, checkRange, loggerFrom, parseAssets, type LogArgs } from './options';

interface WatchArgs extends LogArgs {
  assets?: string[];
  'ws-url'?: string;
  'rest-url'?: string;
  json: boolean;
  duration?: number;
  'count-interval': number;
}

export const watchCommand: CommandModule<object, WatchArgs> = {
  command: 'watch',
  describe: 'Print live trades from the exchange and, every --count-interval seconds, a count per symbol',
  builder: (y) =>
    y
      .option('assets', { type: 'string', array: true, describe: 'Symbols, comma list or repeated', demandOption: true })
      .option('json', { type: 'boolean', default: false, describe: 'One JSON object per trade instead of text' })
      .option('duration', { type: 'number', describe: 'Stop after this many seconds (default: until Ctrl-C)' })
      .option('count-interval', { type: 'number', default: 60, describe: 'Seconds between the trade-count lines on stderr; 0 = off' })
      .options(endpointOptions)
      .check((a) => {
        checkPositive('duration', a.duration);
        // Capped at a day: Node fires a timer longer than ~24.8 days at once instead of late.
        checkRange('count-interval', a['count-interval'], 0, 86_400);
        return true;
      }),
  handler: async (a) => {
    const logger = loggerFrom(a);
    const symbols = parseAssets(a.assets);
    const source = new BinanceSource({ symbols, ...resolveEndpoints(a), logger });
    await source.prepare();
    const counts = new Map<string, number>(symbols.map((s) => [s, 0]));
    source.on('trade', (t) => {
      counts.set(t.symbol, (counts.get(t.symbol) ?? 0) + 1);
      const line = a.json
        ? JSON.stringify({
            symbol: t.symbol,
            time: t.tradeTime,
            price: t.price,
            qty: t.qty,
            maker: t.maker,
            tradeId: t.tradeId,
            type: t.type,
          })
        : `${new Date(t.tradeTime).toISOString()} ${t.symbol} ${t.maker ? 'SELL' : 'BUY '} ${t.qty} @ ${t.price} #${t.tradeId}`;
      process.stdout.write(line + '\n');
    });
    // The source logs gaps itself ('trade gap'): no listener repeats them.
    const interval = a['count-interval'];
    const counter =
      interval > 0
        ? setInterval(() => {
            logger.info(`trades in the last ${interval} s: ${[...counts].map(([s, n]) => `${s}=${n}`).join(' ')}`);
            for (const s of counts.keys()) counts.set(s, 0);
          }, interval * 1000)
        : undefined;
    await source.start();
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
      if (a.duration !== undefined) setTimeout(resolve, a.duration * 1000).unref();
    });
    clearInterval(counter);
    await source.stop();
  },
};

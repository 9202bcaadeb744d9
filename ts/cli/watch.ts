/** `perp-signal watch`: prints live trades and per-minute counts (the original's binance-websockets). */
import type { CommandModule } from 'yargs';
import { BinanceSource, endpointOptions, resolveEndpoints } from '../source';
import { checkPositive, loggerFrom, parseAssets, type LogArgs } from './options';

interface WatchArgs extends LogArgs {
  assets?: string[];
  'ws-url'?: string;
  'rest-url'?: string;
  json: boolean;
  duration?: number;
}

export const watchCommand: CommandModule<object, WatchArgs> = {
  command: 'watch',
  describe: 'Print live trades from the exchange and a per-minute count per symbol',
  builder: (y) =>
    y
      .option('assets', { type: 'string', array: true, describe: 'Symbols, comma list or repeated', demandOption: true })
      .option('json', { type: 'boolean', default: false, describe: 'One JSON object per trade instead of text' })
      .option('duration', { type: 'number', describe: 'Stop after this many seconds (default: until Ctrl-C)' })
      .options(endpointOptions)
      .check((a) => {
        checkPositive('duration', a.duration);
        return true;
      }),
  handler: async (a) => {
    const logger = loggerFrom(a);
    const symbols = parseAssets(a.assets);
    const source = new BinanceSource({ symbols, ...resolveEndpoints(a), logger });
    await source.prepare();
    const perMinute = new Map<string, number>(symbols.map((s) => [s, 0]));
    source.on('trade', (t) => {
      perMinute.set(t.symbol, (perMinute.get(t.symbol) ?? 0) + 1);
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
    const minute = setInterval(() => {
      logger.info(`trades in the last minute: ${[...perMinute].map(([s, n]) => `${s}=${n}`).join(' ')}`);
      for (const s of perMinute.keys()) perMinute.set(s, 0);
    }, 60_000);
    await source.start();
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
      if (a.duration !== undefined) setTimeout(resolve, a.duration * 1000).unref();
    });
    clearInterval(minute);
    await source.stop();
  },
};

/** `perp-signal record`: writes received trade frames in the fixture format (`<recv ns> <frame>`). */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import type { CommandModule } from 'yargs';
import { BinanceSource, endpointOptions, resolveEndpoints, symbolFromAsset } from '../source';

interface RecordArgs {
  assets: string;
  out: string;
  count?: number;
  duration?: number;
  'ws-url'?: string;
  'rest-url'?: string;
}

export const recordCommand: CommandModule<object, RecordArgs> = {
  command: 'record',
  describe: 'Record live trade frames to a file (`<receive ns> <raw frame>` per line; gzip when the name ends in .gz)',
  builder: (y) =>
    y
      .option('assets', { type: 'string', demandOption: true, describe: 'comma-separated assets or symbols, e.g. btc,eth or BTCUSDT' })
      .option('out', { type: 'string', demandOption: true, describe: 'output file (.gz to compress)' })
      .option('count', { type: 'number', describe: 'stop after this many trades' })
      .option('duration', { type: 'number', describe: 'stop after this many seconds' })
      .options(endpointOptions)
      .check((a) => {
        if (a.count !== undefined && !(a.count > 0)) throw new Error(`--count must be > 0, got ${a.count}`);
        if (a.duration !== undefined && !(a.duration > 0)) throw new Error(`--duration must be > 0, got ${a.duration}`);
        return true;
      }),
  handler: async (a) => {
    const symbols = a.assets.split(',').map((s) => s.trim()).filter(Boolean).map(symbolFromAsset);
    const { wsUrl, restUrl } = resolveEndpoints(a);
    const source = new BinanceSource({ symbols, wsUrl, restUrl });
    // An unknown symbol rejects here; main() reports it and exits 2, before the file is created.
    await source.prepare();
    const file = fs.createWriteStream(a.out);
    const gzip = a.out.endsWith('.gz') ? zlib.createGzip() : undefined;
    if (gzip) gzip.pipe(file);
    const sink: NodeJS.WritableStream = gzip ?? file;
    let written = 0;
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r));
    source.on('frame', (text, ns) => {
      if (a.count !== undefined && written >= a.count) return;
      sink.write(`${ns} ${text}\n`);
      written += 1;
      if (a.count !== undefined && written >= a.count) finish();
    });
    source.on('gap', (g) => process.stderr.write(`gap ${g.symbol}: ${g.lastId} -> ${g.nextId} (${g.reason})\n`));
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
    const timer = a.duration !== undefined ? setTimeout(finish, a.duration * 1000) : undefined;
    await source.start();
    await done;
    if (timer) clearTimeout(timer);
    await source.stop();
    await new Promise<void>((r) => {
      file.once('close', () => r());
      sink.end();
    });
    process.stderr.write(`recorded ${written} trades to ${a.out}\n`);
  },
};

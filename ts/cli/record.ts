/** `perp-signal record`: writes received trade frames in the fixture format (`<recv ns> <frame>`). */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import type { CommandModule } from 'yargs';
import { PerpSignalError } from '../errors';
import { BinanceSource, endpointOptions, resolveEndpoints, symbolFromAsset } from '../source';
import { loggerFrom, splitList, type LogArgs } from './options';

interface RecordArgs extends LogArgs {
  assets: string[];
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
      .option('assets', {
        type: 'string',
        array: true,
        demandOption: true,
        describe: 'assets or symbols, comma list and/or repeated, e.g. btc,eth or BTCUSDT',
      })
      .option('out', { type: 'string', demandOption: true, describe: 'output file (.gz to compress)' })
      .option('count', { type: 'number', describe: 'stop after this many trades (default: no limit)' })
      .option('duration', { type: 'number', describe: 'stop after this many seconds (default: until Ctrl-C)' })
      .options(endpointOptions)
      .check((a) => {
        if (a.count !== undefined && !(a.count > 0)) throw new Error(`--count must be > 0, got ${a.count}`);
        if (a.duration !== undefined && !(a.duration > 0)) throw new Error(`--duration must be > 0, got ${a.duration}`);
        return true;
      }),
  handler: async (a) => {
    const symbols = [...new Set(splitList(a.assets).map(symbolFromAsset))];
    const { wsUrl, restUrl } = resolveEndpoints(a);
    const logger = loggerFrom(a);
    const source = new BinanceSource({ symbols, wsUrl, restUrl, logger });
    // An unknown symbol rejects here; main() reports it and exits 2, before the file is created.
    await source.prepare();
    const file = await openOut(a.out);
    const gzip = a.out.endsWith('.gz') ? zlib.createGzip() : undefined;
    if (gzip) gzip.pipe(file);
    const sink: NodeJS.WritableStream = gzip ?? file;
    let written = 0;
    let finish!: () => void;
    let fail!: (e: Error) => void;
    const done = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    // A write that fails later (disk full) ends the run: exit 1 with the reason, not a crash.
    const onWriteError = (e: NodeJS.ErrnoException): void =>
      fail(new PerpSignalError('E_RECORD_WRITE', `cannot write ${a.out}: ${e.message} (after ${written} trades); free space or choose another --out`));
    file.on('error', onWriteError);
    gzip?.on('error', onWriteError);
    source.on('frame', (text, ns) => {
      if (a.count !== undefined && written >= a.count) return;
      sink.write(`${ns} ${text}\n`);
      written += 1;
      if (a.count !== undefined && written >= a.count) finish();
    });
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
    const timer = a.duration !== undefined ? setTimeout(finish, a.duration * 1000) : undefined;
    try {
      await source.start();
      await done;
    } finally {
      if (timer) clearTimeout(timer);
      await source.stop();
    }
    await new Promise<void>((r) => {
      file.once('close', () => r());
      sink.end();
    });
    logger.info(`recorded ${written} trades to ${a.out}`);
  },
};

/** Opens the output file before any trade arrives, so a bad path is a usage error (exit 2). */
async function openOut(out: string): Promise<fs.WriteStream> {
  const file = fs.createWriteStream(out);
  await new Promise<void>((resolve, reject) => {
    file.once('open', () => resolve());
    file.once('error', (e: NodeJS.ErrnoException) =>
      reject(new PerpSignalError('E_USAGE', `cannot write --out ${out}: ${e.code ?? e.message}; give a path in a writable directory`)),
    );
  });
  return file;
}

/**
 * `perp-signal nats-consumer`: takes the feed from NATS (one symbol, several, or all), bootstraps
 * from a snapshot, and prints every trade; `--json` prints the same JSON lines as `tcp-client`: one
 * object per trade, and a line with `"event"` for snapshots taken, frames lost and gap notices.
 */
import { once } from 'node:events';
import type { CommandModule } from 'yargs';
import { NatsConsumer, type NatsConsumerEvent } from '../clients/nats';
import { PerpSignalError } from '../errors';
import { natsSubjects } from '../transports/nats-subjects';
import { loggerFrom, parseAssets, splitList, type LogArgs } from './options';
import { formatTrade } from './trade-line';

interface Args extends LogArgs {
  url: string[];
  symbols?: string[];
  prefix: string;
  json: boolean;
  count: number;
}

/**
 * One output line for an event, or undefined for events that are not printed (heartbeats).
 * `streamSeq`: print the stream sequence number, which only a consumer of every symbol can know.
 */
export function formatNatsEvent(ev: NatsConsumerEvent, json: boolean, nowMs: number, streamSeq = true): string | undefined {
  switch (ev.kind) {
    case 'trade':
      return formatTrade(ev, json, nowMs, streamSeq);
    case 'heartbeat':
      return undefined;
    default: {
      const { kind, ...rest } = ev;
      return json ? JSON.stringify({ event: kind, ...rest }) : `# ${kind} ${JSON.stringify(rest)}`;
    }
  }
}

function usage(msg: string): never {
  throw new PerpSignalError('E_USAGE', msg);
}

export const natsConsumerCommand: CommandModule<object, Args> = {
  command: 'nats-consumer',
  describe: 'Take the feed from NATS (snapshot, then every frame) and print its trades',
  builder: (y) =>
    y
      .option('url', {
        type: 'string',
        array: true,
        default: ['nats://127.0.0.1:4222'],
        describe: 'NATS server URL (repeat or comma-separate for a cluster)',
      })
      .option('symbols', { type: 'string', array: true, describe: 'Symbols to take, e.g. BTCUSDT,ETHUSDT (default: all)' })
      .option('prefix', { type: 'string', default: 'perp', describe: 'Subject prefix of the feed' })
      .option('json', { type: 'boolean', default: false, describe: 'One JSON object per line per trade (resyncs, gaps: "event")' })
      .option('count', { type: 'number', default: 0, describe: 'Exit 0 after this many trades (0: run until stopped)' })
      .check((a) => {
        natsSubjects(a.prefix); // E_NATS_PREFIX: a usage error
        if (!Number.isInteger(a.count) || a.count < 0) usage(`--count ${a.count} must be a whole number of trades (0: no limit)`);
        if (splitList(a.url).length === 0) usage('--url needs a NATS server URL, e.g. nats://127.0.0.1:4222');
        return true;
      }),
  handler: async (argv) => {
    const logger = loggerFrom(argv);
    const symbols = argv.symbols === undefined ? undefined : parseAssets(argv.symbols);
    const url = splitList(argv.url);
    const consumer = await NatsConsumer.connect({ url, prefix: argv.prefix, symbols, logger });
    const stop = (): void => void consumer.close();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let trades = 0;
    // One write per batch; waiting for stdout to drain slows the reader, and a reader that falls
    // too far behind is told (`lost`, reason overflow) instead of buffering without bound.
    for await (const batch of consumer.batches()) {
      const now = Date.now();
      let chunk = '';
      let done = false;
      for (const ev of batch) {
        const line = formatNatsEvent(ev, argv.json, now, symbols === undefined);
        if (line !== undefined) chunk += line + '\n';
        if (ev.kind === 'trade' && ++trades === argv.count) {
          done = true;
          break;
        }
      }
      if (chunk && !process.stdout.write(chunk)) await once(process.stdout, 'drain');
      if (done) break;
    }
    await consumer.close();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  },
};

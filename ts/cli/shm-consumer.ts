/**
 * `perp-signal shm-consumer --name N [--json]`: attaches to a /dev/shm ring, decodes wire v1 or v2
 * from the producer's header copy, and prints every trade as tcp-client does (one JSON object per
 * line with --json; a line with "event" for losses, resyncs, gaps and producer restarts).
 */
import type { CommandModule } from 'yargs';
import { ShmConsumer, type ShmDecodeEvent } from '../clients/shm';
import type { DecodedMessage } from '../codec';
import { PerpSignalError } from '../errors';
import type { LogArgs } from './options';
import { formatTrade } from './trade-line';

interface Args extends LogArgs {
  name: string;
  json: boolean;
  count: number;
  start: string;
  follow: boolean;
}

/** Output lines for one decoded message or stream event (none for heartbeats). */
export function formatShm(ev: DecodedMessage | ShmDecodeEvent, json: boolean, nowMs: number): string[] {
  if (ev.kind === 'trade') return [formatTrade(ev, json, nowMs)];
  if (ev.kind === 'heartbeat') return [];
  const { kind, ...rest } = ev as { kind: string } & Record<string, unknown>;
  const nested = rest.message as DecodedMessage | undefined;
  delete rest.message;
  // JSON has no bigint: epochs print as hex strings.
  for (const [k, v] of Object.entries(rest)) if (typeof v === 'bigint') rest[k] = `0x${v.toString(16)}`;
  const line = json ? JSON.stringify({ event: kind, ...rest }) : `# ${kind} ${JSON.stringify(rest)}`;
  return nested ? [line, ...formatShm(nested, json, nowMs)] : [line];
}

export const shmConsumerCommand: CommandModule<object, Args> = {
  command: 'shm-consumer',
  describe: 'Attach to a /dev/shm ring and print the trades it carries (decoded from the header copy)',
  builder: (y) =>
    y
      .option('name', { type: 'string', demandOption: true, describe: 'Queue name (file /dev/shm/<name>)' })
      .option('json', { type: 'boolean', default: false, describe: 'One JSON object per line per trade (events: "event")' })
      .option('count', { type: 'number', default: 0, describe: 'Exit 0 after this many trades (0: run until stopped)' })
      .option('start', {
        choices: ['latest', 'oldest'],
        default: 'latest',
        describe: 'Begin with new trades, or with the unread backlog (decoding still starts at a header copy)',
      })
      .option('follow', {
        type: 'boolean',
        default: true,
        describe: 'After the producer shuts down, wait for a new one (--no-follow: exit 0)',
      })
      .check((a) => {
        if (!Number.isInteger(a.count) || a.count < 0) {
          throw new PerpSignalError('E_USAGE', `--count ${a.count} must be a whole number of trades (0: no limit)`);
        }
        return true;
      }),
  handler: async (argv) => {
    const consumer = ShmConsumer.open(argv.name, { start: argv.start === 'oldest' ? 'oldest' : 'latest' });
    const ac = new AbortController();
    const stop = (): void => ac.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let trades = 0;
    try {
      for await (const ev of consumer.decoded({ follow: argv.follow, signal: ac.signal })) {
        const lines = formatShm(ev, argv.json, Date.now());
        if (lines.length > 0 && !process.stdout.write(lines.join('\n') + '\n')) {
          await new Promise((r) => process.stdout.once('drain', r));
        }
        if ((ev.kind === 'trade' || (ev.kind === 'lost' && 'message' in ev && ev.message?.kind === 'trade')) && ++trades === argv.count) break;
      }
    } finally {
      consumer.close();
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  },
};

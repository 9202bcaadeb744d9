/** The `perp-signal` command line. Exit codes: 0 clean stop, 1 runtime failure, 2 usage error. */
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { hasCode } from '../errors';
import { checkNumbers, logOptions, USAGE_CODES } from './options';
import { exchangeCommand } from './exchange';
import { recordCommand } from './record';
import { watchCommand } from './watch';
import { formatDemoCommand } from './format-demo';
import { tcpClientCommand } from './tcp-client';
import { tcpCommand } from './tcp';
import { demoCommand } from './demo';
import { natsConsumerCommand } from './nats-consumer';
import { natsCommand } from './nats';
import { shmCommand } from './shm';
import { shmConsumerCommand } from './shm-consumer';
import { shmProducerCommand } from './shm-producer';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = require('../../package.json') as { version: string };

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyCommand = CommandModule<any, any>;

/** Every command; each lives in its own module. */
const commands: AnyCommand[] = [
  tcpCommand,
  shmCommand,
  natsCommand,
  demoCommand,
  tcpClientCommand,
  shmConsumerCommand,
  natsConsumerCommand,
  shmProducerCommand,
  exchangeCommand,
  recordCommand,
  watchCommand,
  formatDemoCommand,
];

function exitCodeOf(e: unknown): number {
  return hasCode(e) && USAGE_CODES.has(e.code) ? 2 : 1;
}

function report(e: unknown, debug: boolean): void {
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`perp-signal: ${msg}\n`);
  if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
}

export async function main(argv: string[] = hideBin(process.argv)): Promise<void> {
  const debug = argv.some((a, i) => a === '--log-level=debug' || (a === '--log-level' && argv[i + 1] === 'debug'));
  let parser = yargs(argv)
    .scriptName('perp-signal')
    .usage('$0 --assets BTCUSDT,ETHUSDT <tcp|shm|nats> [options]\n\nLow-latency forwarder of Binance USD-M trades.')
    .version(pkg.version)
    .options(logOptions)
    .strict()
    // Global: runs for every command, after its own options are known.
    .check((parsed) => checkNumbers(parsed, argv), true)
    // `--assets A,B shm ...`: an array option must not swallow the command after it (repeat
    // the option or use commas for several values).
    .parserConfiguration({ 'greedy-arrays': false })
    .demandCommand(1, 'Name a command; `perp-signal --help` lists them.')
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err) => {
      // yargs passes a message only for argument validation (`check`): that is a usage error.
      if (err && msg === null) {
        report(err, debug);
        process.exit(exitCodeOf(err));
      }
      process.stderr.write(`perp-signal: ${msg ?? err?.message}\nRun \`perp-signal --help\` for usage.\n`);
      process.exit(2);
    })
    .help();
  for (const c of commands) parser = parser.command(c);
  try {
    await parser.parseAsync();
  } catch (e) {
    report(e, debug);
    process.exit(exitCodeOf(e));
  }
}

/** The `perp-signal` command line. Exit codes: 0 clean stop, 1 runtime failure, 2 usage error. */
import yargs, { type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { hasCode } from '../errors';
import { createLogger } from '../observe/logger';
import { checkNotEmpty, checkNumbers, logOptions, rawFlag, USAGE_CODES } from './options';
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

/** How the user asked for logs, read from argv itself: errors can come before yargs has parsed it. */
interface Reporting {
  debug: boolean;
  json: boolean;
}

/** The last word on stderr: one line (a JSON line with `--log-format json`), a stack only with debug. */
function report(e: unknown, how: Reporting, hint?: string): void {
  const msg = e instanceof Error ? e.message : String(e);
  const stack = how.debug && e instanceof Error ? e.stack : undefined;
  if (how.json) {
    const code = hasCode(e) ? e.code : undefined;
    createLogger({ format: 'json', level: 'error' }).error(`perp-signal: ${msg}`, { code, hint, stack });
    return;
  }
  process.stderr.write(`perp-signal: ${msg}\n${hint ? `${hint}\n` : ''}`);
  if (stack) process.stderr.write(`${stack}\n`);
}

export async function main(argv: string[] = hideBin(process.argv)): Promise<void> {
  const how: Reporting = { debug: rawFlag(argv, 'log-level') === 'debug', json: rawFlag(argv, 'log-format') === 'json' };
  let parser = yargs(argv)
    .scriptName('perp-signal')
    .usage('$0 --assets BTCUSDT,ETHUSDT <tcp|shm|nats> [options]\n\nLow-latency forwarder of Binance USD-M trades.')
    .version(pkg.version)
    .options(logOptions)
    .strict()
    // Global: runs for every command, after its own options are known.
    .check((parsed) => checkNumbers(parsed, argv) && checkNotEmpty(parsed), true)
    // `--assets A,B shm ...`: an array option must not swallow the command after it (repeat
    // the option or use commas for several values).
    .parserConfiguration({ 'greedy-arrays': false })
    .demandCommand(1, 'Name a command; `perp-signal --help` lists them.')
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err) => {
      // yargs passes a message only for argument validation (`check`): that is a usage error.
      if (err && msg === null) {
        report(err, how);
        process.exit(exitCodeOf(err));
      }
      // yargs words some messages over several lines ("Invalid values:\n  Argument: ..."): one line.
      const line = (msg ?? err?.message ?? 'bad usage').replace(/:\s*\n\s*/g, ': ').replace(/\s*\n\s*/g, '; ');
      report(line, how, 'Run `perp-signal --help` for usage.');
      process.exit(2);
    })
    .help();
  for (const c of commands) parser = parser.command(c);
  try {
    await parser.parseAsync();
  } catch (e) {
    report(e, how);
    process.exit(exitCodeOf(e));
  }
}

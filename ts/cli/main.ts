/** The `perp-signal` command line. Exit codes: 0 clean stop, 1 runtime failure, 2 usage error. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { exchangeCommand } from './exchange';
import { recordCommand } from './record';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = require('../../package.json') as { version: string };

export async function main(argv: string[] = hideBin(process.argv)): Promise<void> {
  await yargs(argv)
    .scriptName('perp-signal')
    .version(pkg.version)
    .command(exchangeCommand)
    .command(recordCommand)
    .strict()
    .demandCommand(1, 'Name a command; `perp-signal --help` lists them.')
    .fail((msg, err) => {
      process.stderr.write(`perp-signal: ${err ? err.message : msg}\nRun \`perp-signal --help\` for usage.\n`);
      process.exit(2);
    })
    .help()
    .parseAsync();
}

/** `perp-signal exchange`: runs the local Binance-compatible exchange until interrupted. */
import type { CommandModule } from 'yargs';
import { LocalExchange } from '../exchange';
import { parseAssets } from './options';

interface ExchangeArgs {
  port: number;
  symbols?: string;
  rate: number;
  pace: 'random' | 'fixed';
  tickMs?: number;
  replay?: string;
  speed: number;
  'replay-timing': 'timer' | 'exact';
  seed?: number;
}

export const exchangeCommand: CommandModule<object, ExchangeArgs> = {
  command: 'exchange',
  describe: 'Run a local Binance USD-M compatible exchange on 127.0.0.1 (synthetic trades or a replay)',
  builder: (y) =>
    y
      .option('port', { type: 'number', default: 0, describe: 'TCP port on 127.0.0.1 (0 = any free port)' })
      .option('symbols', { type: 'string', describe: 'comma-separated symbols (default BTCUSDT,ETHUSDT,SOLUSDT,1000SATSUSDT)' })
      .option('rate', { type: 'number', default: 10, describe: 'generated trades per second per symbol' })
      .option('pace', {
        choices: ['random', 'fixed'] as const,
        default: 'random' as const,
        describe: 'random: bursts around --rate; fixed: exactly --rate per symbol per second, pre-framed (load tests)',
      })
      .option('tick-ms', { type: 'number', describe: 'generator tick in ms (default 20; 1 with --pace fixed)' })
      .option('replay', {
        type: 'string',
        describe: 'replay a capture (`<ns> <frame>` lines; .gz by name) instead of generating (default: generate)',
      })
      .option('speed', { type: 'number', default: 1, describe: 'replay speed: 1 = recorded pace, 0 = as fast as possible' })
      .option('replay-timing', {
        choices: ['timer', 'exact'] as const,
        default: 'timer' as const,
        describe: "replay: timer sends what is due each timer tick (>= 1 ms); exact sends each frame at its own time (one busy core)",
      })
      .option('seed', { type: 'number', describe: 'generator seed, for repeatable runs (default: random)' })
      .check((a) => {
        if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new Error(`--port must be 0..65535, got ${a.port}`);
        if (!(a.rate >= 0)) throw new Error(`--rate must be >= 0, got ${a.rate}`);
        if (!(a.speed >= 0)) throw new Error(`--speed must be >= 0, got ${a.speed}`);
        if (a.tickMs !== undefined && !(Number(a.tickMs) >= 1)) throw new Error(`--tick-ms must be >= 1, got ${a.tickMs}`);
        return true;
      }),
  handler: async (a) => {
    const ex = new LocalExchange({
      port: a.port,
      // Checked like --assets: letters and digits, any case, duplicates folded.
      symbols: a.symbols ? parseAssets(a.symbols) : undefined,
      rate: a.rate,
      pace: a.pace,
      tickMs: a.tickMs,
      replay: a.replay,
      speed: a.speed,
      replayTiming: a['replay-timing'],
      seed: a.seed,
    });
    // Errors (busy port, missing replay file) go to main(), which maps their code to the exit code.
    const addr = await ex.start();
    process.stdout.write(
      `local exchange listening\n  ws:   ${addr.wsUrl}  (streams at ${addr.wsUrl}/stream?streams=btcusdt@trade)\n  rest: ${addr.restUrl}\n` +
        `point other commands at it: --ws-url ${addr.wsUrl} --rest-url ${addr.restUrl}\n`,
    );
    if (a.replay) ex.on('replayEnd', () => process.stdout.write('replay finished\n'));
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await ex.stop();
  },
};

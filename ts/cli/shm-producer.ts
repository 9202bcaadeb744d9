/**
 * `perp-signal shm-producer --name N`: publishes synthetic trades into a /dev/shm ring (the
 * original's shm-q-pb), encoded in wire v1 or v2 with a header copy, for trying consumers out.
 */
import type { CommandModule } from 'yargs';
import { Encoder, type WireVersion } from '../codec';
import { PerpSignalError } from '../errors';
import { ShmPublisher, headerCopyOf } from '../transports/shm';
import type { Trade } from '../types';
import { loggerFrom, parseAssets, type LogArgs } from './options';

interface Args extends LogArgs {
  name: string;
  capacity: number;
  assets: string[] | string | undefined;
  wire: string;
  rate: number;
  count: number;
  keep: boolean;
}

const PRICE_SCALE = 2;
const QTY_SCALE = 3;

/** `units` of 10^-scale as an exact decimal string. */
function decimal(units: number, scale: number): string {
  const s = String(units).padStart(scale + 1, '0');
  return `${s.slice(0, -scale)}.${s.slice(-scale)}`;
}

/** Random-walk trades: each asset's price moves a few ticks per trade; ids are consecutive. */
export class SyntheticTrades {
  private readonly ticks: number[];
  private readonly ids: number[];
  private rnd: number;

  constructor(
    readonly symbols: readonly string[],
    seed = 1,
  ) {
    this.ticks = symbols.map((_, i) => 1_000_000 * (i + 1)); // 10000.00, 20000.00, ...
    this.ids = symbols.map(() => 1);
    this.rnd = seed >>> 0 || 1;
  }

  /** Current price of asset `i`. */
  price(i: number): string {
    return decimal(this.ticks[i], PRICE_SCALE);
  }

  private next(): number {
    // xorshift32: reproducible without a dependency.
    let x = this.rnd;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rnd = x >>> 0;
    return this.rnd;
  }

  trade(nowMs: number): Trade {
    const a = this.next() % this.symbols.length;
    this.ticks[a] = Math.max(1, this.ticks[a] + ((this.next() % 7) - 3));
    const now = process.hrtime.bigint();
    return {
      symbol: this.symbols[a],
      tradeTime: nowMs,
      eventTime: nowMs,
      tradeId: this.ids[a]++,
      price: decimal(this.ticks[a], PRICE_SCALE),
      qty: decimal(1 + (this.next() % 5000), QTY_SCALE),
      maker: (this.next() & 1) === 1,
      type: 'MARKET',
      recvWallNs: BigInt(Date.now()) * 1_000_000n,
      recvMonoNs: now,
    };
  }
}

export const shmProducerCommand: CommandModule<object, Args> = {
  command: 'shm-producer',
  describe: 'Publish synthetic trades into a /dev/shm ring (for trying consumers out)',
  builder: (y) =>
    y
      .option('name', { type: 'string', demandOption: true, describe: 'Queue name (file /dev/shm/<name>)' })
      .option('capacity', { type: 'number', default: 1048576, describe: 'Ring bytes: a power of two, at least 4096' })
      .option('assets', { type: 'string', array: true, default: ['BTCUSDT', 'ETHUSDT'], describe: 'Symbols to invent trades for' })
      .option('wire', { choices: ['v2', 'v1'], default: 'v2', describe: 'Wire format' })
      .option('rate', { type: 'number', default: 1000, describe: 'Trades per second' })
      .option('count', { type: 'number', default: 0, describe: 'Stop after this many trades (0: run until stopped)' })
      .option('keep', { type: 'boolean', default: false, describe: 'Leave the file in /dev/shm on exit' })
      .check((a) => {
        if (!(a.rate > 0 && a.rate <= 10_000_000)) {
          throw new PerpSignalError('E_USAGE', `--rate ${a.rate} must be between 1 and 10000000 trades per second`);
        }
        if (!Number.isInteger(a.count) || a.count < 0) {
          throw new PerpSignalError('E_USAGE', `--count ${a.count} must be a whole number of trades (0: no limit)`);
        }
        return true;
      }),
  handler: async (argv) => {
    const wire = argv.wire as WireVersion;
    const symbols = parseAssets(argv.assets, wire);
    const gen = new SyntheticTrades(symbols);
    const encoder = new Encoder({
      wire,
      assets: symbols.map((s, i) => ({
        symbol: s,
        refPrice: gen.price(i),
        refQty: '1.000',
        priceScale: PRICE_SCALE,
        qtyScale: QTY_SCALE,
      })),
      refTime: Date.now(),
    });
    // Handlers first: a signal that comes right after the file appears still shuts down cleanly.
    let stopped = false;
    const stop = (): void => {
      stopped = true;
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let pub: ShmPublisher;
    try {
      pub = ShmPublisher.create({
        name: argv.name,
        capacity: argv.capacity,
        keep: argv.keep,
        headerSource: () => headerCopyOf(encoder),
      });
    } catch (e) {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      throw e;
    }
    const started = Date.now();
    let sent = 0;
    try {
      while (!stopped && (argv.count === 0 || sent < argv.count)) {
        const due = Math.floor(((Date.now() - started + 1) * argv.rate) / 1000);
        const n = Math.min(due - sent, argv.count === 0 ? Infinity : argv.count - sent, 10_000);
        if (n > 0) {
          const now = Date.now();
          const batch: Trade[] = [];
          for (let i = 0; i < n; i++) batch.push(gen.trade(now));
          pub.publish(encoder.encodeBatch(batch));
          sent += n;
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      const s = pub.stats();
      loggerFrom(argv).info(`shm-producer: published ${s.pushed} frames, dropped ${s.dropped} (ring full)`);
    } finally {
      await pub.close();
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  },
};

/**
 * `perp-signal --assets BTCUSDT,ETHUSDT nats --url nats://127.0.0.1:4222 [--prefix perp]`: the
 * forwarder publishing v2 frames into NATS (`<prefix>.trades.<SYMBOL>`, snapshots on
 * `<prefix>.snapshot`), for fan-out to many hosts.
 */
import type { CommandModule } from 'yargs';
import { NatsPublisher } from '../transports/nats';
import { runForwarder, withForwarderOptions, type ForwarderArgs } from './forward';
import { checkPositive } from './options';

interface Args extends ForwarderArgs {
  url: string;
  prefix: string;
  'max-unconfirmed-bytes': number;
}

export const natsCommand: CommandModule<object, Args> = {
  command: 'nats',
  describe: 'Forward trades into NATS (read them with nats-consumer or NatsConsumer)',
  builder: (y) =>
    withForwarderOptions(y)
      .option('url', { type: 'string', default: 'nats://127.0.0.1:4222', describe: 'NATS server URL' })
      .option('prefix', { type: 'string', default: 'perp', describe: 'Subject prefix' })
      .option('max-unconfirmed-bytes', {
        type: 'number',
        default: 8 * 1024 * 1024,
        describe: 'Bytes the NATS server may leave unread (no PING answered after them) before frames are dropped and counted',
      })
      .check((a) => {
        checkPositive('max-unconfirmed-bytes', a['max-unconfirmed-bytes']);
        return true;
      }) as never,
  handler: (argv) =>
    runForwarder(argv, (encoder, logger) => NatsPublisher.connect({ url: argv.url, prefix: argv.prefix, encoder, logger, maxUnconfirmedBytes: argv['max-unconfirmed-bytes'] })),
};

/**
 * `perp-signal --assets BTCUSDT,ETHUSDT shm --name trade_queue --capacity 1048576 [--wire v2|v1]`:
 * the forwarder with the /dev/shm ring as its transport. The ring's header copy follows the
 * encoder, so a consumer can attach or resync at any time.
 */
import type { CommandModule } from 'yargs';
import { ShmPublisher, headerCopyOf } from '../transports/shm';
import { runForwarder, withForwarderOptions, type ForwarderArgs } from './forward';

interface Args extends ForwarderArgs {
  name: string;
  capacity: number;
  keep: boolean;
}

export const shmCommand: CommandModule<object, Args> = {
  command: 'shm',
  describe: 'Forward trades into a /dev/shm ring (read it with shm-consumer or ShmConsumer)',
  builder: (y) =>
    withForwarderOptions(y)
      .option('name', { type: 'string', default: 'trade_queue', describe: 'Queue name (file /dev/shm/<name>)' })
      .option('capacity', { type: 'number', default: 1048576, describe: 'Ring bytes: a power of two, at least 4096' })
      .option('keep', { type: 'boolean', default: false, describe: 'Leave the file in /dev/shm on exit' }) as never,
  handler: (argv) =>
    runForwarder(argv, async (encoder) =>
      ShmPublisher.create({
        name: argv.name,
        capacity: argv.capacity,
        keep: argv.keep,
        headerSource: () => headerCopyOf(encoder),
      }),
    ),
};

/**
 * `perp-signal --assets BTCUSDT,ETHUSDT tcp --port 9000 [--host 0.0.0.0] [--wire v2|v1]`: the
 * forwarder with the TCP fan-out as its transport (START, a late-join header, then frames).
 */
import type { CommandModule } from 'yargs';
import { TcpFanout } from '../transports/tcp';
import { runForwarder, withForwarderOptions, type ForwarderArgs } from './forward';

interface Args extends ForwarderArgs {
  host: string;
  port: number;
  'max-clients': number;
  'max-queued-bytes': number;
}

export const tcpCommand: CommandModule<object, Args> = {
  command: 'tcp',
  describe: 'Forward trades to TCP clients (read them with tcp-client or connectTcp)',
  builder: (y) =>
    withForwarderOptions(y)
      .option('host', { type: 'string', default: '0.0.0.0', describe: 'Address to bind' })
      .option('port', { type: 'number', default: 9000, describe: 'Port to listen on' })
      .option('max-clients', { type: 'number', default: 256, describe: 'Refuse connections past this many clients' })
      .option('max-queued-bytes', {
        type: 'number',
        default: 4 * 1024 * 1024,
        describe: 'Disconnect a client with more than this many bytes unsent (slow consumer)',
      }) as never,
  handler: (argv) =>
    runForwarder(argv, async (encoder, logger) => {
      // The pipeline sends heartbeats to every transport (they take a v2 sequence number), so
      // the fan-out must not send its own.
      const fanout = new TcpFanout({
        host: argv.host,
        port: argv.port,
        maxClients: argv['max-clients'],
        maxQueuedBytes: argv['max-queued-bytes'],
        heartbeatMs: 0,
        encoder,
        logger,
      });
      await fanout.listen();
      return fanout;
    }),
};

/**
 * `perp-signal --assets BTCUSDT,ETHUSDT tcp --port 9000 [--host 0.0.0.0] [--wire v2|v1]`: the
 * forwarder with the TCP fan-out as its transport (START, a late-join header, then frames).
 */
import type { CommandModule } from 'yargs';
import { TcpFanout } from '../transports/tcp';
import { runForwarder, withForwarderOptions, type ForwarderArgs } from './forward';
import { checkRange } from './options';

interface Args extends ForwarderArgs {
  host: string;
  port: number;
  'max-clients': number;
  'max-queued-bytes': number;
  'keepalive-ms': number;
  'keepalive-interval-ms': number;
  'keepalive-probes': number;
  'max-coalesce-us': number;
}

export const tcpCommand: CommandModule<object, Args> = {
  command: 'tcp',
  describe: 'Forward trades to TCP clients (read them with tcp-client or connectTcp)',
  builder: (y) =>
    withForwarderOptions(y)
      .option('host', { type: 'string', default: '0.0.0.0', describe: 'Address to bind' })
      .option('port', { type: 'number', default: 9000, describe: 'Port to listen on (0 = any free port, logged)' })
      .option('max-clients', { type: 'number', default: 256, describe: 'Refuse connections past this many clients' })
      .option('max-queued-bytes', {
        type: 'number',
        default: 4 * 1024 * 1024,
        describe: 'Disconnect a client with more than this many bytes unsent (slow consumer)',
      })
      .option('keepalive-ms', { type: 'number', default: 10_000, describe: 'Idle ms before the first TCP keepalive probe to a client' })
      .option('keepalive-interval-ms', { type: 'number', default: 1000, describe: 'Ms between keepalive probes (Linux)' })
      .option('keepalive-probes', {
        type: 'number',
        default: 3,
        describe: 'Unanswered probes before a client is taken as gone; unacknowledged data ends it as soon (Linux)',
      })
      .option('max-coalesce-us', {
        type: 'number',
        default: 1000,
        describe: "A turn's first frames are written at once, the rest together at its end, or once the oldest has waited this long (µs); 0 = write every batch at once",
      })
      .check((a) => {
        checkRange('port', a.port, 0, 65535, true);
        checkRange('max-clients', a['max-clients'], 1, Infinity, true);
        checkRange('max-queued-bytes', a['max-queued-bytes'], 1);
        const mc = a['max-coalesce-us'];
        if (!(Number.isFinite(mc) && mc >= 0)) throw new Error(`--max-coalesce-us must be 0 or a positive number of µs, got ${mc}`);
        for (const k of ['keepalive-ms', 'keepalive-interval-ms', 'keepalive-probes'] as const) {
          const v = a[k];
          if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer, got ${v}`);
        }
        return true;
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
        keepAliveMs: argv['keepalive-ms'],
        keepAliveIntervalMs: argv['keepalive-interval-ms'],
        keepAliveProbes: argv['keepalive-probes'],
        maxCoalesceUs: argv['max-coalesce-us'],
        heartbeatMs: 0,
        encoder,
        logger,
      });
      await fanout.listen();
      return fanout;
    }),
};

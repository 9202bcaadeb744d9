/**
 * `perp-signal tcp-client`: connects to a TCP fan-out, decodes v1 or v2 by the header, and prints
 * every trade with its exchange-to-client latency; `--json` prints one JSON object per line.
 */
import type { CommandModule } from 'yargs';
import { connect, type TcpClientEvent } from '../clients/tcp';
import { PerpSignalError } from '../errors';
import { loggerFrom, type LogArgs } from './options';
import { formatTrade } from './trade-line';

interface Args extends LogArgs {
  host: string;
  port: number;
  json: boolean;
  count: number;
  reconnect: boolean;
}

/** One output line for an event, or undefined for events that are not printed (heartbeats). */
export function formatEvent(ev: TcpClientEvent, json: boolean, nowMs: number): string | undefined {
  switch (ev.kind) {
    case 'trade':
      return formatTrade(ev, json, nowMs);
    case 'heartbeat':
    case 'snapshot':
      // Liveness and state refreshes, not market events.
      return undefined;
    case 'gap':
      return json
        ? JSON.stringify({ event: 'gap', symbol: ev.symbol, lastId: ev.lastId, nextId: ev.nextId, reason: ev.reason })
        : `# gap ${ev.symbol}: trades after ${ev.lastId} up to ${ev.nextId} missing (${ev.reason})`;
    case 'lost':
      return json
        ? JSON.stringify({ event: 'lost', scope: ev.scope, missing: ev.missing, ...(ev.symbol ? { symbol: ev.symbol } : {}) })
        : `# lost: ${ev.missing} frame(s) of the ${ev.scope === 'asset' ? ev.symbol : 'stream'} missing`;
    case 'connected':
      return json
        ? JSON.stringify({ event: 'connected', connection: ev.connection, wire: ev.wire, symbols: ev.symbols })
        : `# connected (${ev.wire}, ${ev.symbols.join(',')})`;
    case 'disconnected':
      return json
        ? JSON.stringify({ event: 'disconnected', connection: ev.connection, reason: ev.reason })
        : `# disconnected: ${ev.reason}`;
  }
}

export const tcpClientCommand: CommandModule<object, Args> = {
  command: 'tcp-client',
  describe: 'Connect to a perp-signal TCP fan-out and print the trades it sends',
  builder: (y) =>
    y
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'Server address' })
      .option('port', { type: 'number', default: 9000, describe: 'Server port' })
      .option('json', { type: 'boolean', default: false, describe: 'One JSON object per line per trade (gaps: "event")' })
      .option('count', { type: 'number', default: 0, describe: 'Exit 0 after this many trades (0: run until stopped)' })
      .option('reconnect', { type: 'boolean', default: true, describe: 'Reconnect when the connection ends (--no-reconnect: exit 1)' })
      .check((a) => {
        if (!Number.isInteger(a.port) || a.port < 1 || a.port > 65535) {
          throw new PerpSignalError('E_USAGE', `--port ${a.port} is not a TCP port: give an integer 1..65535`);
        }
        if (!Number.isInteger(a.count) || a.count < 0) {
          throw new PerpSignalError('E_USAGE', `--count ${a.count} must be a whole number of trades (0: no limit)`);
        }
        return true;
      }),
  handler: async (argv) => {
    const logger = loggerFrom(argv);
    const client = connect({ host: argv.host, port: argv.port, reconnect: argv.reconnect, logger });
    const stop = (): void => client.close();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // The reader went away (`| head`): stop quietly, as a reader that closes the pipe asks.
    const onStdoutError = (e: NodeJS.ErrnoException): void => {
      if (e.code !== 'EPIPE') logger.error('cannot write to stdout', { error: e.message });
      client.close();
    };
    process.stdout.on('error', onStdoutError);
    const out = new LineWriter(process.stdout);
    let trades = 0;
    let lostConnection = false;
    for await (const ev of client) {
      const line = formatEvent(ev, argv.json, Date.now());
      if (line !== undefined) await out.write(line);
      if (ev.kind === 'trade' && ++trades === argv.count) break;
      if (ev.kind === 'disconnected' && !argv.reconnect) lostConnection = true;
    }
    client.close();
    if (!process.stdout.destroyed) await out.end();
    process.stdout.off('error', onStdoutError);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    if (lostConnection) process.exitCode = 1;
  },
};

/**
 * Gathers the lines of one event-loop turn into one write and waits for `drain` when the reader
 * is behind, so a slow reader slows the client (and the server then sees a slow consumer) instead
 * of the client buffering without bound.
 */
class LineWriter {
  private buf = '';
  private scheduled = false;
  private blocked?: Promise<void>;

  constructor(private readonly stream: NodeJS.WritableStream) {}

  async write(line: string): Promise<void> {
    this.buf += line + '\n';
    if (this.buf.length > 65536) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    if (this.blocked) await this.blocked;
  }

  private flush(): void {
    this.scheduled = false;
    if (this.buf.length === 0) return;
    const s = this.stream as NodeJS.WritableStream & { destroyed?: boolean };
    if (s.destroyed) {
      this.buf = '';
      return;
    }
    const ok = s.write(this.buf);
    this.buf = '';
    if (!ok && !this.blocked) {
      // 'close' too: a reader that went away never drains.
      this.blocked = new Promise((r) => {
        const done = (): void => {
          s.off('drain', done);
          s.off('close', done);
          this.blocked = undefined;
          r();
        };
        s.on('drain', done);
        s.on('close', done);
      });
    }
  }

  async end(): Promise<void> {
    this.flush();
    if (this.blocked) await this.blocked;
  }
}

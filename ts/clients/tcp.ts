/**
 * Library client of the TCP fan-out: connects, reads `START` and the header, decodes v1 or v2 as the
 * header says, and yields decoded messages as an async iterator. It reconnects by itself, with a
 * new handshake (and so a fresh decoder state) each time, and tells the consumer about every
 * reconnect: messages sent while it was away are not in the stream.
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { Decoder, isStart, MAX_FRAME, type DecodedMessage, type DecodedTrade, type TradeColumns, type WireVersion } from '../codec';
import { PerpSignalError } from '../errors';
import { noopLogger, type Logger } from '../observe/logger';
import { KEEPALIVE_DEFAULTS, setSocketKeepalive } from '../transports/keepalive';

export interface TcpClientOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default 9000. */
  port?: number;
  /** Reconnect after a disconnect or a failed connect; default true. */
  reconnect?: boolean;
  /** First reconnect delay, doubled per failed attempt up to `retryMaxMs`; defaults 100 and 5000 ms. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Give up a connect attempt after this long; default 5000 ms. */
  connectTimeoutMs?: number;
  /**
   * v2 only (v2 servers send heartbeats when quiet): a connection that brings no byte for this long
   * is taken as dead and replaced; default 5000 ms, 0 disables.
   */
  idleTimeoutMs?: number;
  /** Messages buffered before reading from the socket pauses (the server then sees a slow client). */
  highWaterMark?: number;
  /**
   * Decode each socket read into one `TradeColumns` batch (iterate with `columns()`): the cheap
   * path for high rates, no object or string per trade. Default false (objects: iterate the client,
   * `batches()` or `trades()`).
   */
  columns?: boolean;
  /** Frames longer than this are a protocol error; default the codec's MAX_FRAME (1 MiB). */
  maxFrameBytes?: number;
  logger?: Logger;
}

/** A new connection has completed its handshake; decoding starts from its header. */
export interface ConnectedEvent {
  kind: 'connected';
  /** 1 for the first connection, then one more per reconnect. */
  connection: number;
  wire: WireVersion;
  symbols: readonly string[];
}

/** The connection ended (or could not be made); messages sent until the next `connected` are lost. */
export interface DisconnectedEvent {
  kind: 'disconnected';
  connection: number;
  reason: string;
  /** The server refused us (e.g. max-clients) with this message. */
  refused?: boolean;
}

export type TcpClientEvent = DecodedMessage | ConnectedEvent | DisconnectedEvent;

/** What `columns()` yields: one batch of trades (with its gaps/losses as `events`) per socket read. */
export type TcpColumnsEvent = TradeColumns | ConnectedEvent | DisconnectedEvent;

/** One queued item: an array of events (object mode) or one columns-mode event; `size` in messages. */
interface Queued {
  item: TcpClientEvent[] | TcpColumnsEvent;
  size: number;
}

export interface TcpClientStats {
  connections: number;
  messages: number;
  bytesIn: number;
}

const REFUSAL_PREFIX = 'ERROR ';
const DEFAULTS = {
  host: '127.0.0.1',
  port: 9000,
  reconnect: true,
  retryMinMs: 100,
  retryMaxMs: 5000,
  connectTimeoutMs: 5000,
  idleTimeoutMs: 5000,
  highWaterMark: 65536,
  columns: false,
  maxFrameBytes: MAX_FRAME,
};

type Phase = 'start' | 'header' | 'stream';

/**
 * One logical subscription (over as many TCP connections as it takes). Iterate it once; events are
 * also emitted: `connected`, `disconnected`.
 */
export class TcpClient extends EventEmitter implements AsyncIterable<TcpClientEvent> {
  private readonly opts: typeof DEFAULTS;
  private readonly logger: Logger;
  private socket?: net.Socket;
  /** Decoded messages, one item per socket read, waiting for the consumer. */
  private ready: Queued[] = [];
  private queued = 0;
  private waiter?: () => void;
  private closed = false;
  private paused = false;
  private retryMs: number;
  private retryTimer?: NodeJS.Timeout;
  private connection = 0;
  private announcedDown = false;
  private counters: TcpClientStats = { connections: 0, messages: 0, bytesIn: 0 };

  constructor(opts: TcpClientOptions = {}) {
    super();
    const { logger, ...rest } = opts;
    this.opts = { ...DEFAULTS };
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) (this.opts as Record<string, unknown>)[k] = v;
    this.logger = logger ?? noopLogger;
    this.retryMs = this.opts.retryMinMs;
    this.open();
  }

  stats(): TcpClientStats {
    return { ...this.counters };
  }

  /** Stops reading and reconnecting; the iterator ends after what is already buffered. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.socket?.destroy();
    this.wake();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<TcpClientEvent> {
    if (this.opts.columns) throw this.wrongMode('iterating the client');
    for await (const batch of this.batches()) yield* batch;
  }

  /**
   * The same events, as the arrays decoded from one socket read each: one await per read instead
   * of one per message, for consumers that want the highest rate.
   */
  async *batches(): AsyncGenerator<TcpClientEvent[]> {
    if (this.opts.columns) throw this.wrongMode('batches()');
    for await (const item of this.drain()) yield item as TcpClientEvent[];
  }

  /**
   * With `columns: true`: one `TradeColumns` per socket read (its `events` hold the gaps and losses
   * in between), and `connected`/`disconnected` as in the other iterators.
   */
  async *columns(): AsyncGenerator<TcpColumnsEvent> {
    if (!this.opts.columns) throw this.wrongMode('columns()');
    for await (const item of this.drain()) yield item as TcpColumnsEvent;
  }

  private wrongMode(what: string): PerpSignalError {
    return new PerpSignalError(
      'E_INVALID_ARG',
      this.opts.columns
        ? `${what} yields objects, but this client was made with columns: true; iterate columns()`
        : `${what} needs a client made with connect({ columns: true })`,
    );
  }

  private async *drain(): AsyncGenerator<TcpClientEvent[] | TcpColumnsEvent> {
    try {
      for (;;) {
        const q = this.ready.shift();
        if (q) {
          this.queued -= q.size;
          if (this.paused && this.queued <= this.opts.highWaterMark / 2) {
            this.paused = false;
            this.socket?.resume();
          }
          yield q.item;
          continue;
        }
        if (this.closed) return;
        await new Promise<void>((r) => (this.waiter = r));
      }
    } finally {
      this.close();
    }
  }

  /** Only the trades, for consumers that do not care about gaps and reconnects. */
  async *trades(): AsyncGenerator<DecodedTrade> {
    for await (const ev of this) if (ev.kind === 'trade') yield ev;
  }

  private push(item: TcpClientEvent[] | TcpColumnsEvent, size: number): void {
    this.ready.push({ item, size });
    this.queued += size;
    this.wake();
  }

  /** A connected/disconnected event, in the shape of the client's mode. */
  private pushEvent(ev: ConnectedEvent | DisconnectedEvent): void {
    this.push(this.opts.columns ? ev : [ev], 1);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private open(): void {
    if (this.closed) return;
    const { host, port, connectTimeoutMs } = this.opts;
    const connection = ++this.connection;
    const socket = net.connect({ host, port, noDelay: true });
    this.socket = socket;
    socket.setKeepAlive(true, KEEPALIVE_DEFAULTS.idleMs);
    socket.setTimeout(connectTimeoutMs);
    let phase: Phase = 'start';
    let decoder: Decoder | undefined;
    let pending: Buffer = Buffer.alloc(0);
    let reason: string | undefined;
    let refused = false;
    let connected = false;

    const fail = (why: string): void => {
      reason ??= why;
      socket.destroy();
    };

    let tcpUp = false;
    socket.once('connect', () => {
      // The same timeout now bounds the wait for START and the header.
      tcpUp = true;
      // A server that vanished without a FIN is noticed in ~13 s, not the system's ~11 min (v1
      // streams have no heartbeat to time out on).
      try {
        setSocketKeepalive(socket);
      } catch (e) {
        this.logger.debug('tcp keepalive probe timing not set', { error: e instanceof Error ? e.message : String(e) });
      }
      this.logger.debug('tcp client connected, waiting for START', { host, port, connection });
    });
    socket.on('timeout', () =>
      fail(
        connected
          ? `no data for ${this.opts.idleTimeoutMs} ms (dead feed?)`
          : tcpUp
            ? `no handshake within ${connectTimeoutMs} ms: not a perp-signal server?`
            : `connect timed out after ${connectTimeoutMs} ms`,
      ),
    );
    socket.on('error', (e: NodeJS.ErrnoException) => {
      reason ??= `${e.code ?? 'error'}: ${e.message}`;
    });
    socket.on('data', (chunk: Buffer) => {
      this.counters.bytesIn += chunk.length;
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      let off = 0;
      while (phase !== 'stream') {
        const payload = nextFrame(pending, off, this.opts.maxFrameBytes);
        if (payload === 'long') return fail(`frame longer than ${this.opts.maxFrameBytes} bytes: not a perp-signal server?`);
        if (!payload) break;
        off += 4 + payload.length;
        if (phase === 'start') {
          if (!isStart(payload)) {
            const text = payload.subarray(0, 200).toString('latin1');
            if (!text.startsWith(REFUSAL_PREFIX)) return fail('first frame is not START: not a perp-signal server?');
            refused = true;
            return fail(`refused by server: ${text.slice(REFUSAL_PREFIX.length)}`);
          }
          phase = 'header';
        } else {
          try {
            decoder = new Decoder(payload);
          } catch (e) {
            return fail(`bad header: ${e instanceof Error ? e.message : String(e)}`);
          }
          phase = 'stream';
          connected = true;
          this.counters.connections += 1;
          this.retryMs = this.opts.retryMinMs;
          this.announcedDown = false;
          socket.setTimeout(decoder.wire === 'v2' ? this.opts.idleTimeoutMs : 0);
          const ev: ConnectedEvent = { kind: 'connected', connection, wire: decoder.wire, symbols: decoder.symbols };
          this.emit('connected', ev);
          this.pushEvent(ev);
        }
      }
      if (phase === 'stream' && decoder) {
        const end = completeFramesEnd(pending, off, this.opts.maxFrameBytes);
        if (end < 0) return fail(`frame longer than ${this.opts.maxFrameBytes} bytes`);
        if (end > off) {
          const frames = pending.subarray(off, end);
          try {
            if (this.opts.columns) {
              const cols = decoder.decodeColumns(frames);
              const n = cols.length + cols.events.length;
              this.counters.messages += n;
              this.push(cols, n);
            } else {
              const msgs: DecodedMessage[] = decoder.decodeFrames(frames);
              this.counters.messages += msgs.length;
              this.push(msgs, msgs.length);
            }
          } catch (e) {
            return fail(`undecodable frame: ${e instanceof Error ? e.message : String(e)}`);
          }
          off = end;
        }
      }
      // Copy a partial frame's bytes so they do not pin the whole chunk they came in.
      pending = off === pending.length ? Buffer.alloc(0) : off === 0 ? pending : Buffer.from(pending.subarray(off));
      if (!this.paused && this.queued > this.opts.highWaterMark) {
        this.paused = true;
        socket.pause();
      }
    });
    socket.on('close', () => {
      if (this.socket === socket) this.socket = undefined;
      this.paused = false;
      const why =
        reason ??
        (this.closed
          ? 'closed by client'
          : pending.length > 0
            ? 'server closed the connection inside a frame (a server drops clients that read too slowly)'
            : 'server closed the connection');
      const ev: DisconnectedEvent = { kind: 'disconnected', connection, reason: why, ...(refused ? { refused } : {}) };
      // Our own close() is routine; anything else the user should see.
      if (this.closed) this.logger.info('tcp client disconnected', { host, port, connection, reason: why });
      else this.logger.warn('tcp client disconnected', { host, port, connection, reason: why });
      this.emit('disconnected', ev);
      if (this.closed) return;
      // While the server stays away, one event says so; each further failed attempt is only logged.
      if (connected || !this.announcedDown) {
        this.announcedDown = true;
        this.pushEvent(ev);
      }
      if (!this.opts.reconnect) {
        this.closed = true;
        this.wake();
        return;
      }
      const delay = this.retryMs;
      this.retryMs = Math.min(this.retryMs * 2, this.opts.retryMaxMs);
      this.retryTimer = setTimeout(() => this.open(), delay);
    });
  }
}

/** Connects to a TCP fan-out; iterate the result for decoded messages. */
export function connect(opts: TcpClientOptions = {}): TcpClient {
  return new TcpClient(opts);
}

/** The payload of the frame at `off`, undefined if it is not complete yet, 'long' if absurd. */
function nextFrame(buf: Buffer, off: number, max: number): Buffer | undefined | 'long' {
  if (buf.length - off < 4) return undefined;
  const len = buf.readUInt32LE(off);
  if (len > max) return 'long';
  if (buf.length - off - 4 < len) return undefined;
  return buf.subarray(off + 4, off + 4 + len);
}

/** End offset of the complete frames from `off` on; -1 if one announces an absurd length. */
function completeFramesEnd(buf: Buffer, off: number, max: number): number {
  let p = off;
  while (buf.length - p >= 4) {
    const len = buf.readUInt32LE(p);
    if (len > max) return -1;
    if (buf.length - p - 4 < len) break;
    p += 4 + len;
  }
  return p;
}

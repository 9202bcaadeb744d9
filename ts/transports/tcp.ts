/**
 * TCP fan-out: every client gets `START`, a header holding the encoder state at the point where
 * its frames begin, then the same framed bytes as everyone else (adapted once per late joiner, in
 * v1, until its per-asset time deltas have caught up).
 *
 * A client that does not keep up is disconnected once its queued bytes pass a bound: it is never
 * sent a stream with frames missing (that would corrupt every later delta it decodes), it never
 * slows the others, and the memory it can hold on to is bounded.
 *
 * The first frames of an event-loop turn are written at once; what the turn publishes after them
 * is written to each client together at its end (setImmediate): at high rates the forwarder reads
 * its exchange socket several times per turn, and a loopback write costs the sender the receiver's
 * TCP work and a wake-up too, so a write per client per read was most of the fan-out's CPU. At
 * low rates a turn holds one read, which goes out at once, with no added delay (waiting for the
 * end of the turn cost ~1.5 µs at p50 and ~6 µs at p99, docs/performance.md).
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import { PerpSignalError } from '../errors';
import { noopLogger, type Logger } from '../observe/logger';
import { frame, startFrame, type Encoder, type Joiner } from '../codec';
import type { GapEvent } from '../types';
import type { Transport } from '../pipeline';
import { KEEPALIVE_DEFAULTS, setSocketKeepalive } from './keepalive';

/** What the fan-out needs of the codec's `Encoder`: late joiners and (v2) heartbeats. */
export type FanoutEncoder = Pick<Encoder, 'join' | 'heartbeat'>;

export interface TcpFanoutOptions {
  /** Address to bind; default `0.0.0.0`. */
  host?: string;
  /** Port to bind; 0 picks a free one (see the result of `listen()`). */
  port: number;
  /** Connections past this many are refused with a clear message; default 256. */
  maxClients?: number;
  /** A client with more than this many bytes queued is disconnected; default 4 MiB. */
  maxQueuedBytes?: number;
  /**
   * Send a heartbeat (v2; the v1 encoder has none) after this long without any frame; 0 disables.
   * Default 1000. Applies to a fan-out used on its own: once a Pipeline starts with this fan-out
   * among its transports, the pipeline's heartbeats (its own `heartbeatMs`) are the only ones and
   * this option is ignored, since a v2 heartbeat takes a stream sequence number and one sent on TCP
   * alone would look like a lost frame to the consumers of the other transports.
   */
  heartbeatMs?: number;
  /**
   * Frames published in one event-loop turn are written to each client together at the end of the
   * turn, or as soon as the turn's first unwritten frame is this old, so a long turn (the forwarder
   * reading a backlog, many socket reads in a row) adds at most about this much latency. 0 writes
   * every publish at once. Default 1000.
   */
  maxCoalesceUs?: number;
  /** Idle time before the first TCP keepalive probe to a client, ms; default 10 000. */
  keepAliveMs?: number;
  /**
   * Time between keepalive probes, ms; default 1000. With `keepAliveProbes` unanswered (default 3)
   * the peer is taken as gone, and TCP_USER_TIMEOUT (idle + probes x interval) ends a connection
   * whose sent data stays unacknowledged as long. Linux; elsewhere only the idle time is set.
   */
  keepAliveIntervalMs?: number;
  keepAliveProbes?: number;
  encoder: FanoutEncoder;
  logger?: Logger;
}

export interface TcpFanoutStats {
  /** Clients connected now. */
  clients: number;
  /** Clients disconnected because their queued bytes passed `maxQueuedBytes`. */
  disconnectedSlow: number;
  /** Connections refused because `maxClients` were connected. */
  refused: number;
  /** Bytes handed to client sockets, handshakes included. */
  bytesOut: number;
}

/** Why a client went away, as reported by the `disconnect` event. */
export type DisconnectReason = 'slow' | 'closed' | 'error' | 'shutdown' | 'gap';

export interface ClientInfo {
  id: number;
  remote: string;
}

/** Payload of the frame a refused connection gets instead of `START`. */
export const REFUSAL_PREFIX = 'ERROR ';

const DEFAULTS = {
  host: '0.0.0.0',
  maxClients: 256,
  maxQueuedBytes: 4 * 1024 * 1024,
  heartbeatMs: 1000,
  maxCoalesceUs: 1000,
  keepAliveMs: KEEPALIVE_DEFAULTS.idleMs,
  keepAliveIntervalMs: KEEPALIVE_DEFAULTS.intervalMs,
  keepAliveProbes: KEEPALIVE_DEFAULTS.probes,
};
const CLOSE_GRACE_MS = 2000;

interface Client extends ClientInfo {
  socket: net.Socket;
  /** Set until the joiner has caught up; then every publish writes the shared buffer as is. */
  joiner?: Joiner;
  /** Set by whoever ends the connection on purpose, for the `disconnect` event. */
  reason?: DisconnectReason;
  /**
   * Bytes of this turn's frames published before the client joined: its header already holds
   * their effect, so its first write starts after them.
   */
  skip: number;
}

/**
 * Events: `connect` (ClientInfo), `disconnect` (ClientInfo & { reason: DisconnectReason }),
 * `refuse` ({ remote, reason: string }).
 */
export class TcpFanout extends EventEmitter implements Transport {
  readonly name = 'tcp';
  private readonly opts: Required<Omit<TcpFanoutOptions, 'logger'>>;
  private readonly logger: Logger;
  private readonly clients = new Map<number, Client>();
  private server?: net.Server;
  /** `host:port` once listening, for log lines. */
  where?: string;
  private heartbeatTimer?: NodeJS.Timeout;
  /** A pipeline publishes the heartbeats (heartbeatsFromPipeline): never send our own. */
  private pipelineHeartbeats = false;
  private nextId = 1;
  private lastSendAt = Date.now();
  private closing = false;
  private counters = { disconnectedSlow: 0, refused: 0, bytesOut: 0 };
  /** The keepalive timing could not be set once: said once, not per client. */
  private keepaliveWarned = false;
  /** Frames published this turn, in order, not yet written to any client. */
  private turn: Buffer[] = [];
  private turnBytes = 0;
  /** performance.now() of the turn's first unwritten frame. */
  private turnSince = 0;
  private readonly maxCoalesceMs: number;
  private flushScheduled = false;
  private readonly flushBound = (): void => this.flush();

  constructor(opts: TcpFanoutOptions) {
    super();
    this.opts = { ...DEFAULTS, ...stripUndefined(opts) } as Required<Omit<TcpFanoutOptions, 'logger'>>;
    this.logger = opts.logger ?? noopLogger;
    const { port, maxClients, maxQueuedBytes, heartbeatMs, keepAliveMs, keepAliveIntervalMs, keepAliveProbes } = this.opts;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new PerpSignalError('E_USAGE', `port ${port} is not a TCP port: give an integer 0..65535`);
    }
    if (!Number.isInteger(maxClients) || maxClients < 1) {
      throw new PerpSignalError('E_USAGE', `maxClients ${maxClients} must be a positive integer`);
    }
    if (!(maxQueuedBytes > 0)) {
      throw new PerpSignalError('E_USAGE', `maxQueuedBytes ${maxQueuedBytes} must be a positive number of bytes`);
    }
    for (const [name, v] of Object.entries({ keepAliveMs, keepAliveIntervalMs, keepAliveProbes })) {
      if (!Number.isInteger(v) || v < 1 || v > 2 ** 31 - 1) {
        throw new PerpSignalError('E_USAGE', `${name} ${v} must be a positive integer`);
      }
    }
    if (!(this.opts.maxCoalesceUs >= 0)) {
      throw new PerpSignalError('E_USAGE', `maxCoalesceUs ${this.opts.maxCoalesceUs} must be 0 (write at once) or a positive number of µs`);
    }
    this.maxCoalesceMs = this.opts.maxCoalesceUs / 1000;
    if (!(heartbeatMs >= 0)) {
      throw new PerpSignalError('E_USAGE', `heartbeatMs ${heartbeatMs} must be 0 (off) or a positive number of ms`);
    }
  }

  /**
   * Binds and starts accepting. A busy port rejects with `E_ADDR_IN_USE`, any other bind failure
   * (address not on this host, privileged port) with `E_BIND`.
   */
  listen(): Promise<{ port: number }> {
    if (this.server) return Promise.reject(new PerpSignalError('E_USAGE', 'TcpFanout.listen() was already called'));
    const { host, port } = this.opts;
    const server = net.createServer({ noDelay: true, pauseOnConnect: false }, (s) => this.accept(s));
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        this.server = undefined;
        reject(bindError(e, host, port));
      };
      server.once('error', onError);
      server.listen({ host, port, exclusive: true }, () => {
        server.off('error', onError);
        server.on('error', (e) => this.logger.error('tcp server error', { error: e }));
        const addr = server.address() as net.AddressInfo;
        this.where = `${host}:${addr.port}`;
        this.logger.info('tcp fan-out listening', { host, port: addr.port, maxClients: this.opts.maxClients });
        if (this.opts.heartbeatMs > 0 && !this.pipelineHeartbeats) {
          const hb = this.opts.heartbeatMs;
          this.heartbeatTimer = setInterval(() => this.heartbeat(hb), Math.max(5, Math.floor(hb / 4)));
          this.heartbeatTimer.unref();
        }
        resolve({ port: addr.port });
      });
    });
  }

  /**
   * Framed bytes (u32 LE length + payload, one or more frames); the same bytes go to every client.
   * The first publish of an event-loop turn is written at once (at low rates a frame waits for
   * nothing); later ones in the same turn are gathered and written together at its end.
   */
  publish(framed: Buffer): void {
    if (this.closing) return;
    // Nobody to send to: a client that joins later gets a header that already holds these frames.
    if (this.clients.size > 0 && framed.length > 0) this.send(framed);
    // Bookkeeping after the write, which is what the frame waits for.
    this.lastSendAt = Date.now();
  }

  private send(framed: Buffer): void {
    if (this.maxCoalesceMs === 0) {
      this.writeAll(framed);
      return;
    }
    if (!this.flushScheduled) {
      // Marks the turn as begun: what else it publishes waits for its end.
      this.flushScheduled = true;
      try {
        this.writeAll(framed);
      } finally {
        setImmediate(this.flushBound);
      }
      return;
    }
    this.turn.push(framed);
    this.turnBytes += framed.length;
    if (this.turn.length === 1) this.turnSince = performance.now();
    else if (performance.now() - this.turnSince >= this.maxCoalesceMs) this.flush();
  }

  /** Writes the frames published so far to every client now (also run at the end of each turn). */
  flush(): void {
    this.flushScheduled = false;
    const parts = this.turn;
    if (parts.length === 0) return;
    const all = parts.length === 1 ? parts[0] : Buffer.concat(parts, this.turnBytes);
    this.turn = [];
    this.turnBytes = 0;
    this.writeAll(all);
  }

  private writeAll(all: Buffer): void {
    for (const c of this.clients.values()) {
      let out = all;
      if (c.skip > 0) {
        out = all.subarray(c.skip);
        c.skip = 0;
        if (out.length === 0) continue;
      }
      if (c.joiner) {
        try {
          out = c.joiner.adapt(out);
        } catch (e) {
          // Bytes the codec cannot adapt would decode wrong: this client must start over.
          this.logger.error('tcp client disconnected: its late-join adapter failed', {
            client: c.id,
            remote: c.remote,
            error: e instanceof Error ? e.message : String(e),
          });
          this.clients.delete(c.id);
          c.reason = 'error';
          c.socket.destroy();
          continue;
        }
        if (c.joiner.caughtUp) c.joiner = undefined;
      }
      this.write(c, out);
    }
  }

  /**
   * Trades went missing upstream and the wire (v1) has no frame to say so. Ending every connection
   * is the one signal a v1 consumer cannot miss: it gets every frame before the gap (end() flushes),
   * then must reconnect, and its new header starts from the current state. Silent loss is never an
   * option: a v1 decoder cannot tell that trades are missing.
   */
  uncarriedGap(g: GapEvent): void {
    // Every frame before the gap first: end() then closes after them.
    this.flush();
    if (this.clients.size === 0) return;
    this.logger.warn('trades missing and wire v1 cannot say so: disconnecting every client so it resyncs', {
      symbol: g.symbol,
      lastId: g.lastId,
      nextId: g.nextId,
      clients: this.clients.size,
    });
    for (const c of this.clients.values()) {
      this.clients.delete(c.id);
      c.reason = 'gap';
      c.socket.end();
    }
  }

  stats(): TcpFanoutStats {
    return { clients: this.clients.size, ...this.counters };
  }

  /**
   * A pipeline sends every transport its heartbeats (Transport hook, called by Pipeline.start()):
   * the fan-out stops sending its own, whether listen() was called before or after.
   */
  heartbeatsFromPipeline(): void {
    this.pipelineHeartbeats = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  /** Clients connected now (the pipeline's Transport view). */
  consumers(): number {
    return this.clients.size;
  }

  /** Clients dropped for being slow: the only way the fan-out ever loses a consumer's data. */
  drops(): number {
    return this.counters.disconnectedSlow;
  }

  /** Stops accepting, lets every client receive what is queued for it, then closes them. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.flush();
    this.closing = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    const server = this.server;
    const serverClosed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    const clientsClosed = [...this.clients.values()].map(
      (c) =>
        new Promise<void>((resolve) => {
          c.socket.once('close', () => resolve());
          const timer = setTimeout(() => c.socket.destroy(), CLOSE_GRACE_MS);
          timer.unref();
          c.socket.end();
        }),
    );
    await Promise.all([serverClosed, ...clientsClosed]);
  }

  /** Probe interval, count and user timeout on top of libuv's idle time (see keepalive.ts). */
  private setKeepaliveTiming(socket: net.Socket): void {
    try {
      setSocketKeepalive(socket, {
        idleMs: this.opts.keepAliveMs,
        intervalMs: this.opts.keepAliveIntervalMs,
        probes: this.opts.keepAliveProbes,
      });
    } catch (e) {
      if (this.keepaliveWarned) return;
      this.keepaliveWarned = true;
      const code = e instanceof PerpSignalError ? e.code : undefined;
      const msg = 'tcp keepalive probe timing not set; half-open clients are reaped on the system keepalive schedule';
      const fields = { error: e instanceof Error ? e.message : String(e) };
      if (code === 'E_UNSUPPORTED') this.logger.debug(msg, fields);
      else this.logger.warn(msg, fields);
    }
  }

  private accept(socket: net.Socket): void {
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    // Bytes from clients mean nothing to us: read and discard them so the connection's end is seen.
    socket.on('data', discard);
    if (this.closing || this.clients.size >= this.opts.maxClients) {
      this.refuse(socket, remote);
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, this.opts.keepAliveMs);
    this.setKeepaliveTiming(socket);
    let joiner: Joiner;
    try {
      joiner = this.opts.encoder.join();
    } catch (e) {
      // Never let one connection take the server down; this client gets no stream it cannot decode.
      this.logger.error('tcp client dropped: no late-join state for it', { remote, error: e instanceof Error ? e.message : String(e) });
      socket.on('error', discard);
      socket.destroy();
      return;
    }
    const c: Client = { id: this.nextId++, remote, socket, joiner, skip: this.turnBytes };
    this.clients.set(c.id, c);
    socket.on('error', (e: NodeJS.ErrnoException) => {
      c.reason ??= 'error';
      this.logger.debug('tcp client socket error', { client: c.id, remote, error: e.message });
    });
    socket.on('close', () => {
      this.clients.delete(c.id);
      const reason = c.reason ?? (this.closing ? 'shutdown' : 'closed');
      this.logger.info('tcp client disconnected', { client: c.id, remote, reason, clients: this.clients.size });
      this.emit('disconnect', { id: c.id, remote, reason });
    });
    // START and the header in one write: they leave in one segment.
    this.write(c, Buffer.concat([startFrame(), frame(joiner.header)]));
    this.logger.info('tcp client connected', { client: c.id, remote, clients: this.clients.size });
    this.emit('connect', { id: c.id, remote });
  }

  /**
   * Queues `data` for a client, or drops the client if its queue is already past the bound, so a
   * single large batch is not mistaken for a slow reader and what a client can hold is at most
   * maxQueuedBytes + one batch.
   */
  private write(c: Client, data: Buffer): void {
    const s = c.socket;
    if (s.destroyed || s.writableEnded) return;
    const queued = s.writableLength;
    if (queued > this.opts.maxQueuedBytes) {
      this.dropSlow(c, queued);
      return;
    }
    s.write(data);
    this.counters.bytesOut += data.length;
  }

  private dropSlow(c: Client, queued: number): void {
    this.counters.disconnectedSlow += 1;
    this.clients.delete(c.id);
    this.logger.warn('tcp client disconnected: it did not read fast enough', {
      client: c.id,
      remote: c.remote,
      queuedBytes: queued,
      maxQueuedBytes: this.opts.maxQueuedBytes,
    });
    c.reason = 'slow';
    c.socket.destroy();
  }

  private refuse(socket: net.Socket, remote: string): void {
    this.counters.refused += 1;
    const why = this.closing
      ? 'server is shutting down'
      : `server is full: ${this.opts.maxClients} clients connected (max-clients)`;
    this.logger.warn('tcp client refused', { remote, reason: why });
    this.emit('refuse', { remote, reason: why });
    socket.on('error', discard);
    socket.end(frame(Buffer.from(`${REFUSAL_PREFIX}${why}`, 'ascii')));
    const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    timer.unref();
  }

  private heartbeat(intervalMs: number): void {
    const now = Date.now();
    if (now - this.lastSendAt < intervalMs) return;
    const payload = this.opts.encoder.heartbeat(now);
    if (payload) this.publish(frame(payload));
    else this.lastSendAt = now; // v1: nothing to send; look again an interval later
  }
}

function discard(): void {
  /* bytes from a client are ignored on purpose */
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function bindError(e: NodeJS.ErrnoException, host: string, port: number): PerpSignalError {
  const where = `${host}:${port}`;
  if (e.code === 'EADDRINUSE') {
    return new PerpSignalError(
      'E_ADDR_IN_USE',
      `cannot listen on ${where}: the port is already in use; stop the other process or pick another --port`,
    );
  }
  const hint =
    e.code === 'EACCES'
      ? 'ports below 1024 need privileges; pick a port of 1024 or more'
      : e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND'
        ? 'the address is not one of this host; use 0.0.0.0, 127.0.0.1 or an address of a local interface'
        : 'check --host and --port';
  return new PerpSignalError('E_BIND', `cannot listen on ${where}: ${e.code ?? e.message}; ${hint}`);
}

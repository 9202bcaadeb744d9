/**
 * One WebSocket to the exchange with its own liveness checks: our ping with a pong deadline, and a
 * data watchdog for a socket that stays open but goes quiet. It reports 'down' once, with why; the
 * owner decides whether to reconnect.
 *
 * Two clients speak the protocol: 'builtin' (default) does the handshake with Node's http client
 * and reads frames with our RFC 6455 reader, handing each text frame over as a byte range of the
 * socket read with one receive stamp per read; 'ws' uses the `ws` package (kept as a fallback and
 * for comparison: it costs ~0.3 µs more per message).
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { clientFrame, closePayload, FrameReader, OP_CLOSE, OP_PING, OP_PONG, type FrameSink } from './rfc6455';
import { upgrade } from './ws-handshake';

/** Largest message accepted from the exchange (its frames are a few hundred bytes). */
const MAX_PAYLOAD = 1 << 20;

export type WsClient = 'builtin' | 'ws';

export interface ConnectionOptions {
  /** Send our ping this often, ms (0 = never). */
  pingIntervalMs: number;
  /** Declare the connection dead when a pong takes longer than this, ms. */
  pingTimeoutMs: number;
  /** Declare the connection dead after this long without any message, ms (0 = off). */
  watchdogMs: number;
  /** Give up opening after this long, ms. */
  openTimeoutMs: number;
  /** Which WebSocket client reads the stream (default 'builtin'). */
  client?: WsClient;
}

/**
 * Receives every text message: bytes [start, end) of `buf` (valid only during the call) and the
 * monotonic time of the socket read that completed it, ns (`process.hrtime.bigint()` clock).
 */
export type TextHandler = (buf: Buffer, start: number, end: number, recvMonoNs: number) => void;

export interface ConnectionEvents {
  binary: [size: number];
  down: [reason: string];
}

/** The protocol side of a connection, whichever client speaks it. */
interface Link {
  ping(): void;
  /** Starts the closing handshake; resolves once the socket is gone. */
  close(): Promise<void>;
  /** Drops the socket at once. */
  terminate(): void;
}

export class StreamConnection extends EventEmitter<ConnectionEvents> {
  private link?: Link;
  private timers: NodeJS.Timeout[] = [];
  private lastMessageAt = Date.now();
  private pongDeadline?: NodeJS.Timeout;
  private isDown = false;
  private closing = false;
  private readonly abort = new AbortController();
  /** Messages received; the owner reads it to know the connection delivers. */
  messages = 0;
  /** Set by the owner before open(): every text message goes here (a call, not an event: hot path). */
  onText: TextHandler = () => undefined;
  /**
   * Set by the owner before open(): called once the messages of a socket read have all gone to
   * `onText`, when `readEnds` is true (the builtin client; `ws` hands messages over one by one).
   */
  onReadEnd: () => void = () => undefined;
  /** Whether `onReadEnd` follows each socket read's messages. */
  readonly readEnds: boolean;
  private readonly client: WsClient;

  constructor(
    readonly url: string,
    private readonly opts: ConnectionOptions,
  ) {
    super();
    this.client = opts.client ?? 'builtin';
    this.readEnds = this.client === 'builtin';
  }

  /** Resolves once the handshake completes; rejects if it fails or times out. */
  open(): Promise<void> {
    return this.client === 'ws' ? this.openWs() : this.openBuiltin();
  }

  private async openBuiltin(): Promise<void> {
    const { socket, head } = await upgrade(this.url, this.opts.openTimeoutMs, this.abort.signal);
    if (this.closing) {
      socket.destroy();
      throw new Error('closed before open');
    }
    let recv = 0;
    let gone = false;
    const send = (op: number, payload?: Buffer): void => {
      if (!gone && socket.writable) socket.write(clientFrame(op, payload));
    };
    let closed: () => void = () => undefined;
    const whenClosed = new Promise<void>((r) => (closed = r));
    const fail = (reason: string): void => {
      gone = true;
      socket.destroy();
      this.down(reason);
    };
    const sink: FrameSink = {
      text: (buf, start, end) => {
        this.messages += 1;
        this.onText(buf, start, end, recv);
      },
      binary: (size) => {
        this.messages += 1;
        this.emit('binary', size);
      },
      // Binance pings every few minutes and drops a client that does not answer.
      ping: (payload) => send(OP_PONG, payload),
      pong: () => this.gotPong(),
      close: (code, reason) => {
        // Echo the close, then let the server end the TCP connection (it owns that step).
        if (!this.closing) send(OP_CLOSE, code === undefined ? undefined : closePayload(code, ''));
        gone = true;
        socket.end();
        if (!this.closing) this.down(`closed by peer (code ${code ?? 1005}${reason ? `, ${reason}` : ''})`);
      },
      error: (code, why) => {
        send(OP_CLOSE, closePayload(code, why));
        fail(`protocol error: ${why}`);
      },
    };
    const reader = new FrameReader(sink, MAX_PAYLOAD);
    const onData = (chunk: Buffer): void => {
      recv = Number(process.hrtime.bigint());
      this.lastMessageAt = Date.now();
      reader.push(chunk);
      this.onReadEnd();
    };
    socket.on('data', onData);
    socket.on('error', (e: Error) => fail(`socket error: ${e.message}`));
    socket.on('close', () => {
      gone = true;
      closed();
      this.down('closed by peer (code 1006, no close frame)');
    });
    this.link = {
      ping: () => send(OP_PING),
      close: () => {
        send(OP_CLOSE, closePayload(1000, 'bye'));
        // The server answers with its close and ends the connection; don't wait long for that.
        const t = setTimeout(() => socket.destroy(), 1000);
        return whenClosed.then(() => clearTimeout(t));
      },
      terminate: () => {
        gone = true;
        socket.destroy();
      },
    };
    this.lastMessageAt = Date.now();
    this.startChecks();
    if (head.length > 0) onData(head);
  }

  private openWs(): Promise<void> {
    return new Promise((resolve, reject) => {
      // No UTF-8 validation pass over every message: the fast path reads the bytes itself (a field
      // it keeps that is not clean ASCII fails its decimal or symbol check and goes to the slow
      // path), and the slow path's toString() turns invalid bytes into U+FFFD, which JSON.parse and
      // the field checks then treat as any other bad frame: counted, logged, never forwarded blind.
      const ws = new WebSocket(this.url, { perMessageDeflate: false, handshakeTimeout: this.opts.openTimeoutMs, skipUTF8Validation: true, maxPayload: MAX_PAYLOAD });
      let opened = false;
      this.link = {
        ping: () => ws.ping(),
        close: () => {
          if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
          return new Promise((done) => {
            const t = setTimeout(() => {
              ws.terminate();
              done();
            }, 1000);
            ws.once('close', () => {
              clearTimeout(t);
              done();
            });
            if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
            else ws.close(1000, 'bye');
          });
        },
        terminate: () => ws.terminate(),
      };
      ws.on('open', () => {
        opened = true;
        this.lastMessageAt = Date.now();
        this.startChecks();
        resolve();
      });
      ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
        const mono = Number(process.hrtime.bigint());
        this.lastMessageAt = Date.now();
        this.messages += 1;
        const buf = asBuffer(data);
        if (isBinary) this.emit('binary', buf.length);
        else this.onText(buf, 0, buf.length, mono);
      });
      ws.on('pong', () => this.gotPong());
      ws.on('error', (err: Error) => {
        if (!opened) reject(err);
        else this.down(`socket error: ${err.message}`);
      });
      ws.on('unexpected-response', (_req, res) => {
        const err = new Error(`handshake refused: HTTP ${res.statusCode}`);
        res.resume();
        ws.terminate();
        if (!opened) reject(err);
      });
      ws.on('close', (code: number, reason: Buffer) => {
        if (!opened) reject(new Error(`closed before open (code ${code})`));
        else this.down(`closed by peer (code ${code}${reason.length ? `, ${reason.toString()}` : ''})`);
      });
    });
  }

  private gotPong(): void {
    if (this.pongDeadline) clearTimeout(this.pongDeadline);
    this.pongDeadline = undefined;
  }

  private startChecks(): void {
    const { pingIntervalMs, pingTimeoutMs, watchdogMs } = this.opts;
    if (pingIntervalMs > 0) {
      this.timers.push(
        setInterval(() => {
          if (this.pongDeadline || this.isDown || !this.link) return;
          this.pongDeadline = setTimeout(() => this.down(`no pong within ${pingTimeoutMs} ms`), pingTimeoutMs);
          this.link.ping();
        }, pingIntervalMs),
      );
    }
    if (watchdogMs > 0) {
      this.timers.push(
        setInterval(
          () => {
            const quiet = Date.now() - this.lastMessageAt;
            if (quiet > watchdogMs) this.down(`no data for ${quiet} ms (watchdog ${watchdogMs} ms)`);
          },
          Math.max(10, Math.floor(watchdogMs / 4)),
        ),
      );
    }
  }

  private stopChecks(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.pongDeadline) clearTimeout(this.pongDeadline);
    this.pongDeadline = undefined;
  }

  private down(reason: string): void {
    if (this.isDown) return;
    this.isDown = true;
    this.stopChecks();
    this.link?.terminate();
    this.emit('down', reason);
  }

  /** Closes without reporting 'down' (the owner asked for it). */
  close(): Promise<void> {
    this.closing = true;
    this.isDown = true;
    this.stopChecks();
    this.abort.abort();
    return this.link ? this.link.close() : Promise.resolve();
  }
}

/** `ws` hands a Buffer with its default binaryType; the other shapes only if someone changed it. */
function asBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

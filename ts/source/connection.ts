/**
 * One WebSocket to the exchange with its own liveness checks: our ping with a pong deadline, and a
 * data watchdog for a socket that stays open but goes quiet. It reports 'down' once, with why; the
 * owner decides whether to reconnect.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';

export interface ConnectionOptions {
  /** Send our ping this often, ms (0 = never). */
  pingIntervalMs: number;
  /** Declare the connection dead when a pong takes longer than this, ms. */
  pingTimeoutMs: number;
  /** Declare the connection dead after this long without any message, ms (0 = off). */
  watchdogMs: number;
  /** Give up opening after this long, ms. */
  openTimeoutMs: number;
}

export interface ConnectionEvents {
  /** A text message's raw bytes (not decoded: the fast path parses them in Rust) and its monotonic receive time, ns. */
  text: [data: Buffer, recvMonoNs: bigint];
  binary: [size: number];
  down: [reason: string];
}

export class StreamConnection extends EventEmitter<ConnectionEvents> {
  private ws?: WebSocket;
  private timers: NodeJS.Timeout[] = [];
  private lastMessageAt = Date.now();
  private pongDeadline?: NodeJS.Timeout;
  private isDown = false;
  /** Messages received; the owner reads it to know the connection delivers. */
  messages = 0;

  constructor(
    readonly url: string,
    private readonly opts: ConnectionOptions,
  ) {
    super();
  }

  /** Resolves once the handshake completes; rejects if it fails or times out. */
  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      // No UTF-8 validation pass over every message: the fast path reads the bytes itself (a field
      // it keeps that is not clean ASCII fails its decimal or symbol check and goes to the slow
      // path), and the slow path's toString() turns invalid bytes into U+FFFD, which JSON.parse and
      // the field checks then treat as any other bad frame: counted, logged, never forwarded blind.
      const ws = new WebSocket(this.url, { perMessageDeflate: false, handshakeTimeout: this.opts.openTimeoutMs, skipUTF8Validation: true });
      this.ws = ws;
      let opened = false;
      ws.on('open', () => {
        opened = true;
        this.lastMessageAt = Date.now();
        this.startChecks();
        resolve();
      });
      ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
        const mono = process.hrtime.bigint();
        this.lastMessageAt = Date.now();
        this.messages += 1;
        const buf = asBuffer(data);
        if (isBinary) this.emit('binary', buf.length);
        else this.emit('text', buf, mono);
      });
      ws.on('pong', () => {
        if (this.pongDeadline) clearTimeout(this.pongDeadline);
        this.pongDeadline = undefined;
      });
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

  private startChecks(): void {
    const { pingIntervalMs, pingTimeoutMs, watchdogMs } = this.opts;
    if (pingIntervalMs > 0) {
      this.timers.push(
        setInterval(() => {
          if (this.pongDeadline || this.ws?.readyState !== WebSocket.OPEN) return;
          this.pongDeadline = setTimeout(() => this.down(`no pong within ${pingTimeoutMs} ms`), pingTimeoutMs);
          this.ws.ping();
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
    this.ws?.terminate();
    this.emit('down', reason);
  }

  /** Closes without reporting 'down' (the owner asked for it). */
  close(): Promise<void> {
    this.isDown = true;
    this.stopChecks();
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1000);
      ws.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else ws.close(1000, 'bye');
    });
  }
}

/** `ws` hands a Buffer with its default binaryType; the other shapes only if someone changed it. */
function asBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

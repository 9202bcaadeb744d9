/**
 * A WebSocket server written byte by byte on a plain TCP socket, so a test can send exactly the
 * frames it wants (split anywhere, fragmented, masked by mistake, a bad handshake) and read back the
 * client's own frames (pongs, closes) as they are on the wire.
 */
import { createHash } from 'node:crypto';
import * as net from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface ClientFrame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** One accepted client after the handshake. */
export class RawConn {
  readonly frames: ClientFrame[] = [];
  private buf = Buffer.alloc(0);
  closed = false;

  constructor(
    readonly socket: net.Socket,
    readonly path: string,
  ) {
    socket.on('close', () => (this.closed = true));
  }

  write(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Writes `bytes` in pieces of `size`, each after a short pause so they arrive as separate reads. */
  async writeSlowly(bytes: Buffer, size: number, pauseMs = 1): Promise<void> {
    for (let o = 0; o < bytes.length; o += size) {
      this.write(bytes.subarray(o, o + size));
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  }

  /** Client bytes after the handshake: parses its frames (masked, as RFC 6455 requires). */
  feed(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = b[1] & 0x7f;
      let h = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        h = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        h = 10;
      }
      const masked = (b[1] & 0x80) !== 0;
      const keyLen = masked ? 4 : 0;
      if (b.length < h + keyLen + len) return;
      const payload = Buffer.from(b.subarray(h + keyLen, h + keyLen + len));
      if (masked) for (let i = 0; i < len; i++) payload[i] ^= b[h + (i & 3)];
      this.frames.push({ fin: (b[0] & 0x80) !== 0, opcode: b[0] & 0x0f, masked, payload });
      this.buf = b.subarray(h + keyLen + len);
      // As a server does at the end of the closing handshake: it closes the TCP connection.
      if ((b[0] & 0x0f) === 0x8) this.socket.end();
    }
  }
}

export interface RawServerOptions {
  /** Answer the n-th handshake (0-based) with a wrong Sec-WebSocket-Accept. */
  badAcceptOn?: number[];
}

export class RawWsServer {
  readonly conns: RawConn[] = [];
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private handshakes = 0;
  /** Called after each handshake with the connection and its index. */
  onConnect: (c: RawConn, index: number) => void = () => undefined;

  constructor(private readonly opts: RawServerOptions = {}) {
    this.server = net.createServer((s) => this.accept(s));
  }

  async listen(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const { port } = this.server.address() as net.AddressInfo;
    return `ws://127.0.0.1:${port}`;
  }

  private accept(s: net.Socket): void {
    this.sockets.add(s);
    s.setNoDelay(true);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
    let head = Buffer.alloc(0);
    let conn: RawConn | undefined;
    s.on('data', (d: Buffer) => {
      if (conn) {
        conn.feed(d);
        return;
      }
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const req = head.subarray(0, end).toString('latin1');
      const key = /^sec-websocket-key:\s*(\S+)/im.exec(req)?.[1] ?? '';
      const n = this.handshakes++;
      const accept = (this.opts.badAcceptOn ?? []).includes(n) ? 'bm90IHRoZSByaWdodCBhbnN3ZXI=' : createHash('sha1').update(key + GUID).digest('base64');
      s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      conn = new RawConn(s, req.split(' ')[1] ?? '');
      this.conns.push(conn);
      const rest = head.subarray(end + 4);
      if (rest.length > 0) conn.feed(rest);
      this.onConnect(conn, n);
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** A server frame: unmasked unless `masked` (a protocol error from a server), FIN unless told. */
export function serverFrame(opcode: number, payload: Buffer | string, o: { fin?: boolean; masked?: boolean; rsv?: number } = {}): Buffer {
  const p = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = p.length;
  const h = len < 126 ? 2 : len < 0x10000 ? 4 : 10;
  const key = o.masked ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0);
  const out = Buffer.alloc(h + key.length + len);
  out[0] = ((o.fin ?? true) ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode;
  const m = o.masked ? 0x80 : 0;
  if (h === 2) out[1] = m | len;
  else if (h === 4) {
    out[1] = m | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = m | 127;
    out.writeBigUInt64BE(BigInt(len), 2);
  }
  key.copy(out, h);
  for (let i = 0; i < len; i++) out[h + key.length + i] = o.masked ? p[i] ^ key[i & 3] : p[i];
  return out;
}

/** A Binance combined-stream trade frame for BTCUSDT. */
export function tradeJson(id: number, price: string, qty = '0.010', pad = 0): string {
  const t = 1723161256000 + id;
  return `{"stream":"btcusdt@trade","data":{"e":"trade","E":${t},"T":${t},"s":"BTCUSDT","t":${id},"p":"${price}","q":"${qty}","X":"MARKET","m":${id % 2 === 0}}}${' '.repeat(pad)}`;
}

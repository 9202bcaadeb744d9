/**
 * RFC 6455 framing for the client side of the exchange's stream: a reader of server frames and a
 * writer of (masked) client frames. The reader exists for speed: `ws`'s Receiver costs ~0.3 µs per
 * message (stream machinery, a Buffer and an event per frame); this one walks each socket read once
 * and hands every whole text frame over as a byte range of that read, so the source copies it once.
 */
import { randomFillSync } from 'node:crypto';

export const OP_CONT = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/** Close codes the reader fails a connection with. */
export const CLOSE_PROTOCOL_ERROR = 1002;
export const CLOSE_TOO_BIG = 1009;

export interface FrameSink {
  /** A whole text message: bytes [start, end) of `buf`, valid only during the call (copy to keep). */
  text(buf: Buffer, start: number, end: number): void;
  /** A whole binary message (the exchange sends none; the owner counts it). */
  binary(size: number): void;
  ping(payload: Buffer): void;
  pong(payload: Buffer): void;
  /** The peer's close frame (code undefined when it carried none). Nothing is read after it. */
  close(code: number | undefined, reason: string): void;
  /** The peer broke the protocol; the connection must be failed with `code`. Nothing is read after it. */
  error(code: number, why: string): void;
}

/** Largest header: 2 bytes + 8 length bytes (server frames carry no mask key). */
const MAX_HEADER = 10;

/** The payload length of a frame at `o` whose header is `h` (4 or 10) bytes long. */
function readLength(buf: Buffer, o: number, h: number): number {
  if (h === 4) return (buf[o + 2] << 8) | buf[o + 3];
  const hi = buf.readUInt32BE(o + 2);
  // Anything past 2^53 is not a length a JS number can hold, let alone one we would accept.
  return hi > 0x1fffff ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + buf.readUInt32BE(o + 6);
}

export class FrameReader {
  /**
   * A frame that is not whole yet, from earlier reads: its first `pendLen` bytes. Grown only to the
   * frame's size, so a read that completes it is copied only as far as the frame goes and the rest
   * of the read is walked in place.
   */
  private pend: Buffer = Buffer.alloc(0);
  private pendLen = 0;
  /** Bytes needed before the pending frame can be parsed (its header, then all of it). */
  private need = 0;
  /** A fragmented message in progress: its opcode and fragments. */
  private fragOp = -1;
  private frags: Buffer[] = [];
  private fragLen = 0;
  private stopped = false;

  constructor(
    private readonly sink: FrameSink,
    /** Largest message accepted, bytes; a larger one fails the connection (1009). */
    private readonly maxPayload: number,
  ) {}

  /** One socket read. */
  push(chunk: Buffer): void {
    if (this.stopped) return;
    let from = 0;
    if (this.pendLen > 0) {
      from = this.fill(chunk);
      if (from < 0) return;
      // `pend` now holds one whole frame (or a header the walk refuses).
      const whole = this.pendLen;
      this.pendLen = 0;
      this.walk(this.pend, 0, whole);
      if (this.stopped) return;
    }
    this.walk(chunk, from, chunk.length);
  }

  /**
   * Moves bytes from the front of `chunk` into the pending frame until it is whole; the offset in
   * `chunk` after them, or -1 when the chunk ran out first (all of it is then pending).
   */
  private fill(chunk: Buffer): number {
    let co = 0;
    for (;;) {
      const take = Math.min(this.need - this.pendLen, chunk.length - co);
      if (this.pend.length < this.need) {
        const grown = Buffer.allocUnsafe(Math.max(this.need, 256));
        this.pend.copy(grown, 0, 0, this.pendLen);
        this.pend = grown;
      }
      chunk.copy(this.pend, this.pendLen, co, co + take);
      this.pendLen += take;
      co += take;
      if (this.pendLen < this.need) return -1;
      const size = this.frameSize();
      if (size <= this.pendLen) return co;
      this.need = size;
    }
  }

  /**
   * Bytes the pending frame needs, as far as its header is known: the header's size while it is
   * incomplete, then the whole frame's. A length past `maxPayload` needs nothing more (the walk
   * refuses it from the header alone).
   */
  private frameSize(): number {
    const b1 = this.pend[1];
    const len7 = b1 & 0x7f;
    const h = len7 === 126 ? 4 : len7 === 127 ? MAX_HEADER : 2;
    if (this.pendLen < h) return h;
    const len = h === 2 ? len7 : readLength(this.pend, 0, h);
    return len > this.maxPayload || (b1 & 0x80) !== 0 ? this.pendLen : h + len;
  }

  /** Walks the frames in bytes [o, n) of `buf`, keeping an incomplete last one for the next read. */
  private walk(buf: Buffer, o: number, n: number): void {
    while (o < n) {
      if (o + 2 > n) {
        this.keep(buf, o, n, 2);
        return;
      }
      const b0 = buf[o];
      const b1 = buf[o + 1];
      let len = b1 & 0x7f;
      let h = 2;
      if (len === 126) {
        if (o + 4 > n) {
          this.keep(buf, o, n, 4);
          return;
        }
        h = 4;
        len = readLength(buf, o, h);
      } else if (len === 127) {
        if (o + MAX_HEADER > n) {
          this.keep(buf, o, n, MAX_HEADER);
          return;
        }
        h = MAX_HEADER;
        len = readLength(buf, o, h);
      }
      if ((b1 & 0x80) !== 0) {
        this.fail(CLOSE_PROTOCOL_ERROR, 'the server sent a masked frame');
        return;
      }
      if ((b0 & 0x70) !== 0) {
        this.fail(CLOSE_PROTOCOL_ERROR, 'reserved bits set, but no extension was negotiated');
        return;
      }
      if (len > this.maxPayload) {
        this.fail(CLOSE_TOO_BIG, `a ${len}-byte frame is over the ${this.maxPayload}-byte limit`);
        return;
      }
      const end = o + h + len;
      if (end > n) {
        this.keep(buf, o, n, h + len);
        return;
      }
      const start = o + h;
      o = end;
      // The one case that matters for speed: a whole text message in one frame.
      if (b0 === 0x81 && this.fragOp < 0) this.sink.text(buf, start, end);
      else if (!this.frame(b0, buf, start, end)) return;
      if (this.stopped) return;
    }
  }

  /** Everything but an unfragmented text frame; false when the connection is done. */
  private frame(b0: number, buf: Buffer, start: number, end: number): boolean {
    const op = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    const len = end - start;
    if (op >= OP_CLOSE) {
      if (!fin) return this.fail(CLOSE_PROTOCOL_ERROR, 'a fragmented control frame');
      if (len > 125) return this.fail(CLOSE_PROTOCOL_ERROR, `a ${len}-byte control frame (at most 125)`);
      const payload = Buffer.from(buf.subarray(start, end));
      switch (op) {
        case OP_PING:
          this.sink.ping(payload);
          return true;
        case OP_PONG:
          this.sink.pong(payload);
          return true;
        case OP_CLOSE: {
          if (len === 1) return this.fail(CLOSE_PROTOCOL_ERROR, 'a close frame with a 1-byte payload');
          this.stopped = true;
          this.sink.close(len >= 2 ? payload.readUInt16BE(0) : undefined, payload.toString('utf8', 2));
          return false;
        }
        default:
          return this.fail(CLOSE_PROTOCOL_ERROR, `unknown control opcode 0x${op.toString(16)}`);
      }
    }
    if (op !== OP_CONT && op !== OP_TEXT && op !== OP_BINARY) return this.fail(CLOSE_PROTOCOL_ERROR, `unknown opcode 0x${op.toString(16)}`);
    if (op === OP_CONT) {
      if (this.fragOp < 0) return this.fail(CLOSE_PROTOCOL_ERROR, 'a continuation frame outside any message');
    } else {
      if (this.fragOp >= 0) return this.fail(CLOSE_PROTOCOL_ERROR, 'a new message before the fragmented one ended');
      this.fragOp = op;
    }
    this.fragLen += len;
    if (this.fragLen > this.maxPayload) return this.fail(CLOSE_TOO_BIG, `a ${this.fragLen}-byte message is over the ${this.maxPayload}-byte limit`);
    if (!fin) {
      // Copied: `buf` is a socket read that the caller may reuse after this call.
      this.frags.push(Buffer.from(buf.subarray(start, end)));
      return true;
    }
    const whole = this.frags.length === 0 ? buf.subarray(start, end) : Buffer.concat([...this.frags, buf.subarray(start, end)]);
    const kind = this.fragOp;
    this.fragOp = -1;
    this.frags = [];
    this.fragLen = 0;
    if (kind === OP_TEXT) this.sink.text(whole, 0, whole.length);
    else this.sink.binary(whole.length);
    return true;
  }

  /** Keeps bytes [o, n) of `buf` for the next read; `need` bytes from `o` complete the next step. */
  private keep(buf: Buffer, o: number, n: number, need: number): void {
    // A copy: `buf` may be reused by the caller once push() returns.
    const len = n - o;
    if (this.pend.length < Math.max(len, need)) this.pend = Buffer.allocUnsafe(Math.max(len, Math.min(need, this.maxPayload + MAX_HEADER), 256));
    buf.copy(this.pend, 0, o, n);
    this.pendLen = len;
    this.need = need;
  }

  private fail(code: number, why: string): false {
    this.stopped = true;
    this.pendLen = 0;
    this.frags = [];
    this.sink.error(code, why);
    return false;
  }
}

/** A client frame: FIN set, masked with a fresh random key, as RFC 6455 requires of clients. */
export function clientFrame(opcode: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const len = payload.length;
  const h = len < 126 ? 2 : len < 0x10000 ? 4 : 10;
  const out = Buffer.allocUnsafe(h + 4 + len);
  out[0] = 0x80 | opcode;
  if (h === 2) out[1] = 0x80 | len;
  else if (h === 4) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(len / 0x100000000), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  randomFillSync(out, h, 4);
  for (let i = 0; i < len; i++) out[h + 4 + i] = payload[i] ^ out[h + (i & 3)];
  return out;
}

/** A close frame's payload: the code, then the reason (cut to fit the 125-byte control limit). */
export function closePayload(code: number, reason: string): Buffer {
  const r = Buffer.from(reason, 'utf8').subarray(0, 123);
  const out = Buffer.allocUnsafe(2 + r.length);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2);
  return out;
}

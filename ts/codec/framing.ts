/**
 * Framing shared by TCP and batches: each frame is a u32 little-endian length, then the payload.
 * A TCP stream opens with a frame holding `START`, then the header frame, then message frames.
 */
import { PerpSignalError } from '../errors';

/** Payload of the first frame of a TCP stream. */
export const WIRE_V1_START = 'START';
const START_BYTES = Buffer.from(WIRE_V1_START, 'latin1');

/** No legitimate payload comes near this (a 1024-asset v2 snapshot is ~70 KiB). */
export const MAX_FRAME = 1 << 20;

/** One frame: u32-LE length, then `payload`. */
export function frame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.set(payload, 4);
  return out;
}

/** The `START` frame that opens a TCP stream. */
export function startFrame(): Buffer {
  return frame(START_BYTES);
}

/** True if `payload` is the `START` marker. */
export function isStart(payload: Uint8Array): boolean {
  return Buffer.from(payload.buffer, payload.byteOffset, payload.length).equals(START_BYTES);
}

/**
 * Reassembles frames from a byte stream cut anywhere (TCP chunks). `push` returns the payloads
 * completed by a chunk (views into the chunks, not copies, when a frame lies within one chunk).
 * A length above `maxFrame` throws `E_FRAME_TOO_LONG` before anything is allocated for it.
 */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(readonly maxFrame: number = MAX_FRAME) {}

  /** Bytes received that do not complete a frame yet. */
  get buffered(): number {
    return this.pending.length;
  }

  push(chunk: Uint8Array): Buffer[] {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.pending.length > 0) buf = Buffer.concat([this.pending, buf]);
    const out: Buffer[] = [];
    let pos = 0;
    while (buf.length - pos >= 4) {
      const len = buf.readUInt32LE(pos);
      if (len > this.maxFrame) {
        this.pending = Buffer.alloc(0);
        throw new PerpSignalError(
          'E_FRAME_TOO_LONG',
          `frame length ${len} exceeds the limit of ${this.maxFrame} bytes; the stream is corrupt or not perp-signal framing`,
        );
      }
      if (buf.length - pos - 4 < len) break;
      out.push(buf.subarray(pos + 4, pos + 4 + len));
      pos += 4 + len;
    }
    // Copy the tail so a retained partial frame does not pin the caller's whole chunk.
    this.pending = pos === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
    return out;
  }
}

/** Splits a complete framed batch into payload views; throws on a truncated or absurd frame. */
export function splitFrames(framed: Uint8Array, maxFrame: number = MAX_FRAME): Buffer[] {
  const r = new FrameReader(maxFrame);
  const out = r.push(framed);
  if (r.buffered !== 0) {
    throw new PerpSignalError('E_TRUNCATED', `framed batch ends inside a frame (${r.buffered} bytes left over)`);
  }
  return out;
}

/**
 * Raw WebSocket text frames waiting for the pipeline's flush, copied back to back into one reused
 * buffer (no string per frame), with each frame's end offset and monotonic receive time. The layout
 * is what `Encoder.ingest` reads (`RawFrames`).
 */
export class FramePool {
  pool = Buffer.allocUnsafe(64 * 1024);
  ends = new Uint32Array(256);
  /** Per frame: monotonic receive time, ns (`process.hrtime.bigint()` clock) as a number. */
  recvMonoNs = new Float64Array(256);
  /** Per frame: the caller's tag of where it came from (the source's connection index). */
  origin = new Uint16Array(256);
  count = 0;
  private used = 0;

  /** Queues bytes [start, end) of `data`. */
  push(data: Buffer, start: number, stop: number, recvMonoNs: number, origin: number): void {
    const end = this.used + (stop - start);
    if (end > this.pool.length) this.growPool(end);
    if (this.count === this.ends.length) this.growIndex();
    data.copy(this.pool, this.used, start, stop);
    this.used = end;
    this.ends[this.count] = end;
    this.recvMonoNs[this.count] = recvMonoNs;
    this.origin[this.count] = origin;
    this.count += 1;
  }

  /** Frame `i` as text (the slow path and `record` only; the fast path reads the bytes in Rust). */
  text(i: number): string {
    return this.pool.toString('utf8', i === 0 ? 0 : this.ends[i - 1], this.ends[i]);
  }

  clear(): void {
    this.count = 0;
    this.used = 0;
  }

  private growPool(need: number): void {
    const next = Buffer.allocUnsafe(Math.max(need, 2 * this.pool.length));
    this.pool.copy(next, 0, 0, this.used);
    this.pool = next;
  }

  private growIndex(): void {
    const ends = new Uint32Array(2 * this.ends.length);
    ends.set(this.ends);
    this.ends = ends;
    const recv = new Float64Array(2 * this.recvMonoNs.length);
    recv.set(this.recvMonoNs);
    this.recvMonoNs = recv;
    const origin = new Uint16Array(2 * this.origin.length);
    origin.set(this.origin);
    this.origin = origin;
  }
}

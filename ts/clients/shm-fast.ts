/**
 * The JS fast path of the /dev/shm consumer: pops ordinary records straight from the shared
 * mapping with no N-API call. The native consumer (crates/perp-signal-node/src/ring.rs) hands JS
 * the mapping and a state block holding the read position; JS pops only the plain case (a
 * committed record with the expected sequence number, in the epoch the consumer follows, that
 * fits the buffer) and answers NATIVE for everything else (attach, loss, producer restart or
 * shutdown, resync), which the caller then asks the native consumer about. The native side takes
 * over the state block on entry to every call and publishes it on return, so the two readers
 * always agree on where the stream stands. Layout numbers: docs/shm-layout.md.
 */

/** Let the native consumer deal with the next record (or event). */
export const NATIVE = -5;
/** Nothing to read right now. */
export const EMPTY = -1;

// docs/shm-layout.md
const DATA_OFFSET = 20480;
const RECORD_HEADER = 8;
/** Layout version 2: records start on 64-byte (cache-line) boundaries. */
const RECORD_ALIGN = 64;
const EPOCH_WORD = 40 / 8; // BigUint64Array index
const READ_WORD = 128 / 8;
const READ_LO = 128 / 4; // Int32Array index of the low half of the read cursor
const TWO_32 = 4294967296;

// State block slots; keep in step with ST_* in crates/perp-signal-node/src/ring.rs.
const ST_READ = 0;
const ST_EXPECTED = 1;
const ST_POPPED = 2;
const ST_LAST_SEQ = 3;
const ST_EPOCH = 4;
const ST_FAST = 5;
const ST_CAPACITY = 6;
const ST_MAX_PAYLOAD = 7;

/** What FastRing needs from the native handle. */
export interface FastRingSource {
  mapping(): ArrayBuffer | null;
  stateBlock(): ArrayBuffer | null;
}

export class FastRing {
  private readonly bytes: Uint8Array;
  private readonly words: Int32Array;
  private readonly big: BigUint64Array;
  private readonly st: Float64Array;
  private readonly stBig: BigUint64Array;
  private readonly cap: number;
  /** cap - 1 as an int32 mask (-1 for a 4 GiB ring): ring offset = (cursor mod 2^32) & mask. */
  private readonly mask: number;
  private readonly end: number;
  private readonly maxPayload: number;
  /** The last destination and a 32-bit view of it (null if it is not 4-aligned): callers reuse
   * one buffer, so the view is made once and small records are copied a word at a time. */
  private dst: Uint8Array | null = null;
  private dstWords: Int32Array | null = null;
  /** Records this fast path popped. */
  popped = 0;
  /** Bytes popped here whose release (the read cursor store) is still pending. */
  private unreleased = 0;
  /** Release at least every this many bytes, as the native consumer does: a 16th of the ring,
   * at most 4 KiB. A store per record sent the read cursor's cache line to a producer waiting
   * for room at every record, and as a seq-cst store it stalled the pop until it got the line. */
  private readonly releaseEvery: number;

  private constructor(ring: ArrayBuffer, state: ArrayBuffer) {
    this.bytes = new Uint8Array(ring);
    this.words = new Int32Array(ring);
    this.big = new BigUint64Array(ring, 0, 4096 / 8);
    this.st = new Float64Array(state);
    this.stBig = new BigUint64Array(state);
    this.cap = this.st[ST_CAPACITY];
    this.mask = (this.cap - 1) | 0;
    this.end = DATA_OFFSET + this.cap;
    this.maxPayload = this.st[ST_MAX_PAYLOAD];
    this.releaseEvery = Math.min(this.cap / 16, 4096);
  }

  /** The fast path over a native consumer, or null where it cannot be had (the caller then uses
   * the native consumer alone, which is always exact). */
  static over(h: FastRingSource): FastRing | null {
    try {
      const ring = h.mapping();
      const state = h.stateBlock();
      if (!ring || !state) return null;
      const f = new FastRing(ring, state);
      return f.bytes.length === f.end ? f : null;
    } catch {
      return null; // e.g. a ring larger than a typed array may be
    }
  }

  /** Sequence number of the last record popped, by either reader (-1 before the first). */
  lastSeq(): number {
    return this.st[ST_LAST_SEQ];
  }

  /**
   * Copies the next record into `dst` and releases it to the producer: its length, EMPTY, or
   * NATIVE (nothing was consumed; ask the native consumer).
   */
  pop(dst: Uint8Array): number {
    const st = this.st;
    if (st[ST_FAST] !== 1) return NATIVE;
    const read = st[ST_READ];
    const w = this.wordAt(read);
    const words = this.words;
    // The header word is stored whole by the producer; we load its halves, low first.
    let lo = Atomics.load(words, w);
    const hi = Atomics.load(words, w + 1);
    if (lo === 0) {
      if (hi === 0) {
        // Caught up: show the producer an empty ring. (Native calls publish it themselves.)
        if (this.unreleased !== 0) this.release();
        return this.sameEpoch() ? EMPTY : NATIVE;
      }
      // Committed between our two loads (so its low half is there now), or not a record at all.
      lo = Atomics.load(words, w);
      if (lo === 0) return NATIVE;
    }
    if (lo > 0) return NATIVE; // bit 31 (committed) clear: not a record; native reports it
    const len = lo & 0x7fffffff;
    if (len > this.maxPayload || len > dst.length) return NATIVE;
    const expected = st[ST_EXPECTED];
    if (hi !== (expected | 0)) return NATIVE; // a gap (both: the sequence number mod 2^32)
    this.copy(w * 4 + RECORD_HEADER, len, dst);
    // Seqlock-style check, as the native consumer does: a producer that restarted since we
    // attached first stores epoch 0, then rewrites the ring, so if anything we read above is
    // its, this load sees the change and the copy is discarded (nothing was consumed).
    if (!this.sameEpoch()) return NATIVE;
    const span = RECORD_HEADER + len + RECORD_ALIGN - 1; // arithmetic, not `&`: len may pass 2^31 - 64
    const size = span - (span % RECORD_ALIGN);
    const next = read + size;
    st[ST_READ] = next;
    st[ST_EXPECTED] = expected + 1;
    st[ST_POPPED] += 1;
    st[ST_LAST_SEQ] = expected;
    this.popped++;
    this.unreleased += size;
    if (this.unreleased >= this.releaseEvery) this.release();
    return len;
  }

  /** Stores the read cursor, handing the records popped so far back to the producer. Call it
   * before the native consumer is closed or replaced, which does not know what JS popped. */
  release(): void {
    const read = this.st[ST_READ];
    // The producer loads the cursor as one u64: storing only the low half is that same single
    // store while the high half does not change (the last release was at most 4 KiB back).
    const lo = read % TWO_32;
    if (lo >= this.unreleased) Atomics.store(this.words, READ_LO, lo | 0);
    else Atomics.store(this.big, READ_WORD, BigInt(read));
    this.unreleased = 0;
  }

  /** Int32Array index of the record header word at cursor `read` (64-aligned: exact). The
   * capacity is a power of two, so the offset is the cursor's low bits: integer operations, not
   * a floating-point division. */
  private wordAt(read: number): number {
    return (DATA_OFFSET + (((read >>> 0) & this.mask) >>> 0)) / 4;
  }

  private sameEpoch(): boolean {
    return Atomics.load(this.big, EPOCH_WORD) === this.stBig[ST_EPOCH];
  }

  /** Copies `len` payload bytes starting at mapping offset `src` (8 past a 64-aligned record) into `dst`. */
  private copy(src: number, len: number, dst: Uint8Array): void {
    if (src === this.end) src = DATA_OFFSET;
    const bytes = this.bytes;
    const first = Math.min(len, this.end - src);
    if (first === len && len <= 128) {
      if (dst !== this.dst) {
        this.dst = dst;
        this.dstWords = dst.byteOffset % 4 === 0 ? new Int32Array(dst.buffer, dst.byteOffset, dst.length >>> 2) : null;
      }
      const out = this.dstWords;
      if (out) {
        const words = this.words;
        const n = len >>> 2;
        const from = src / 4;
        for (let i = 0; i < n; i++) out[i] = words[from + i];
        for (let i = n * 4; i < len; i++) dst[i] = bytes[src + i];
        return;
      }
    }
    dst.set(bytes.subarray(src, src + first), 0);
    if (first < len) dst.set(bytes.subarray(DATA_OFFSET, DATA_OFFSET + len - first), first);
  }

  /** pop(), polling again up to `spinPolls` times while the ring is empty. */
  popSpin(dst: Uint8Array, spinPolls: number): number {
    const r = this.pop(dst);
    if (r !== EMPTY || spinPolls <= 0) return r;
    // Wait on the record header word alone: one load per poll, and the line it is on is the
    // one the producer's next record arrives in.
    const w = this.wordAt(this.st[ST_READ]);
    const words = this.words;
    for (let i = 0; i < spinPolls && Atomics.load(words, w) === 0; i++);
    return this.pop(dst);
  }
}

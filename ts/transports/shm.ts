/**
 * The /dev/shm publisher used by the pipeline: one ring record per encoded frame, and a header
 * copy so a consumer can attach or resync at any time. Never blocks: a full ring drops (and
 * counts) frames, and consumers learn of it from the sequence gap.
 */
import { PerpSignalError, nativeCall } from '../errors';
import { binding } from '../native';
import { assertShmSupported } from '../platform';
import type { GapEvent } from '../types';
import type { Transport } from '../pipeline';

/** The part of the addon this module wraps (crates/perp-signal-node/src/ring.rs). */
interface RingProducerHandle {
  push(payload: Uint8Array): boolean;
  /** Pushes each frame of a framed batch: frames dropped × 2, plus 1 when a consumer waits for a header copy. */
  publishFramed(framed: Uint8Array): number;
  markLoss(): void;
  headerWanted(): boolean;
  setHeader(header: Uint8Array, state: Uint8Array): void;
  stats(): { pushed: number; dropped: number; epoch: bigint };
  consumerPid(): number;
  consumerAttached(): boolean;
  close(): void;
}
interface RingProducerBinding {
  RingProducer: { create(name: string, capacity: number, keep: boolean): RingProducerHandle };
}

const native = binding<RingProducerBinding>();

/** A header copy: the codec header, plus (wire v1) the per-asset state to resume decoding. */
export interface HeaderCopy {
  header: Uint8Array;
  state?: Uint8Array;
}

export interface ShmPublisherOptions {
  /** File name under /dev/shm: 1-200 of `A-Z a-z 0-9 . _ -`, not starting with `.`. */
  name: string;
  /** Data ring size in bytes: a power of two, at least 4096. */
  capacity: number;
  /** Leave the file in /dev/shm on close (it is removed otherwise). */
  keep?: boolean;
  /**
   * Gives the header that holds after the last frame published (e.g. `() => encoder.header()`).
   * When set, the publisher refreshes the header copy right after a publish whenever a consumer
   * asked for one (on attach, or after losing frames), so consumers resync without the caller's
   * help. Without it, call setHeader() after publish() yourself.
   */
  headerSource?: () => Uint8Array | HeaderCopy;
}

const EMPTY = new Uint8Array(0);

/** What headerCopyOf needs of the codec's Encoder. */
export interface HeaderSourceEncoder {
  header(): Buffer;
  stateV1(): { lastTimes: number[] } | null;
}

/**
 * The header copy for an encoder's current state: its header, and for wire v1 each asset's last
 * trade time as `N x f64 LE` (docs/shm-layout.md). Use as `headerSource: () => headerCopyOf(enc)`.
 */
export function headerCopyOf(enc: HeaderSourceEncoder): HeaderCopy {
  const v1 = enc.stateV1();
  if (!v1) return { header: enc.header() };
  const state = Buffer.alloc(8 * v1.lastTimes.length);
  v1.lastTimes.forEach((t, i) => state.writeDoubleLE(t, 8 * i));
  return { header: enc.header(), state };
}

export class ShmPublisher implements Transport {
  /** Transport name, as the pipeline's stats label it. */
  readonly name = 'shm';
  /** Where consumers find it, for the start-up log line. */
  readonly where: string;

  private constructor(
    private handle: RingProducerHandle | null,
    /** The queue's file name under /dev/shm. */
    readonly queue: string,
    private readonly headerSource?: () => Uint8Array | HeaderCopy,
  ) {
    this.where = `/dev/shm/${queue}`;
  }

  /**
   * Creates `/dev/shm/<name>` (mode 0600). Replaces a file left by a dead producer; throws
   * PerpSignalError `E_QUEUE_BUSY` if a live producer has it, `E_BAD_NAME`, `E_BAD_CAPACITY`,
   * `E_NOT_A_QUEUE` (a symlink or foreign file, left untouched).
   */
  static create(opts: ShmPublisherOptions): ShmPublisher {
    assertShmSupported();
    const h = nativeCall(() => native.RingProducer.create(opts.name, opts.capacity, opts.keep ?? false));
    const pub = new ShmPublisher(h, opts.name, opts.headerSource);
    try {
      pub.refreshHeader();
    } catch (e) {
      void pub.close();
      throw e;
    }
    return pub;
  }

  private get h(): RingProducerHandle {
    if (!this.handle) throw new PerpSignalError('E_CLOSED', `shm publisher ${this.queue} is closed; create a new one`);
    return this.handle;
  }

  /** Writes the header copy: it holds for the next frame published. */
  setHeader(header: Uint8Array, state?: Uint8Array): void {
    const h = this.h;
    nativeCall(() => h.setHeader(header, state ?? EMPTY));
  }

  /**
   * Publishes u32LE-framed frames (as Encoder.encodeBatch gives them), one ring record each.
   * Returns how many frames were dropped because the ring was full (also counted in stats()).
   */
  publish(framed: Uint8Array): number {
    const h = this.h;
    const r = nativeCall(() => h.publishFramed(framed));
    if (this.headerSource && (r & 1) === 1) this.refreshHeader();
    return r >>> 1;
  }

  /**
   * Trades are missing upstream and the wire (v1) has no frame to say so: skip a sequence number so
   * the consumer sees a loss and resyncs from the header copy, exactly as after a full ring.
   */
  uncarriedGap(_g: GapEvent): void {
    const h = this.h;
    nativeCall(() => h.markLoss());
  }

  /** Publishes one record of raw bytes; false if the ring was full and it was dropped. */
  push(payload: Uint8Array): boolean {
    const h = this.h;
    return nativeCall(() => h.push(payload));
  }

  /** True when a consumer waits for a fresh header copy (see setHeader). */
  headerWanted(): boolean {
    return this.handle?.headerWanted() ?? false;
  }

  private refreshHeader(): void {
    const src = this.headerSource;
    if (!src) return;
    const got = src();
    if (got instanceof Uint8Array) this.setHeader(got);
    else this.setHeader(got.header, got.state);
  }

  stats(): { pushed: number; dropped: number; epoch: bigint } {
    return this.h.stats();
  }

  /** Frames dropped because the ring was full (Transport). */
  drops(): number {
    return this.handle?.stats().dropped ?? 0;
  }

  /** 1 while a live consumer is attached (the ring has at most one), else 0 (Transport). */
  consumers(): number {
    return this.handle?.consumerAttached() ? 1 : 0;
  }

  /**
   * Tells consumers the stream ended and removes the file (unless `keep`). Takes effect at once;
   * the promise is for the pipeline's Transport interface. Idempotent.
   */
  close(): Promise<void> {
    this.handle?.close();
    this.handle = null;
    return Promise.resolve();
  }
}

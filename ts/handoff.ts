/** The pipeline's 'handoff' event: what was handed to the transports, per trade, for stats and benchmarks. */
import type { Trade } from './types';

/**
 * One hand-off of trades to the transports, for stats and benchmarks. The object and its arrays
 * are reused between events: copy what you keep. Built only when someone listens to 'handoff'.
 */
export interface Handoff {
  count: number;
  /** Per trade: index into `pipeline.symbols`. */
  asset: ArrayLike<number>;
  tradeId: ArrayLike<number>;
  /** Exchange trade time, ms. */
  tradeTime: ArrayLike<number>;
  /** Per trade: monotonic receive time of its WebSocket frame, ns as a number (`process.hrtime.bigint()` clock). */
  recvMonoNs: ArrayLike<number>;
  /** Monotonic time the last transport's publish returned, ns. */
  sentMonoNs: number;
}

/** Views of the four columns cut to one length, made once per length. */
interface ColumnViews {
  asset: Float64Array;
  tradeId: Float64Array;
  tradeTime: Float64Array;
  recvMonoNs: Float64Array;
}

/** Reused per-trade columns of the 'handoff' event (nothing allocated per event once warm). */
export class HandoffColumns {
  private cap = 0;
  private asset = new Float64Array(0);
  private tradeId = new Float64Array(0);
  private tradeTime = new Float64Array(0);
  private recv = new Float64Array(0);
  private views: ColumnViews[] = [];
  private readonly event: Handoff = { count: 0, asset: this.asset, tradeId: this.tradeId, tradeTime: this.tradeTime, recvMonoNs: this.recv, sentMonoNs: 0 };

  /** Fills the columns from trades and returns the event (views of length `n`). */
  fromTrades(batch: readonly Trade[], index: ReadonlyMap<string, number>, sentMonoNs: number): Handoff {
    const n = batch.length;
    this.reserve(n);
    for (let i = 0; i < n; i++) {
      const t = batch[i];
      this.asset[i] = index.get(t.symbol) ?? -1;
      this.tradeId[i] = t.tradeId;
      this.tradeTime[i] = t.tradeTime;
      this.recv[i] = Number(t.recvMonoNs);
    }
    return this.view(n, sentMonoNs);
  }

  /** Fills the columns from an ingest run: `meta` = n × (asset, tradeId, tradeTime), receive times from `recv[from..]`. */
  fromMeta(meta: Float64Array, n: number, recv: Float64Array, from: number, sentMonoNs: number): Handoff {
    this.reserve(n);
    for (let i = 0, k = 0; i < n; i++, k += 3) {
      this.asset[i] = meta[k];
      this.tradeId[i] = meta[k + 1];
      this.tradeTime[i] = meta[k + 2];
      this.recv[i] = recv[from + i];
    }
    return this.view(n, sentMonoNs);
  }

  private reserve(n: number): void {
    if (n <= this.cap) return;
    this.cap = Math.max(n, this.cap * 2, 64);
    this.asset = new Float64Array(this.cap);
    this.tradeId = new Float64Array(this.cap);
    this.tradeTime = new Float64Array(this.cap);
    this.recv = new Float64Array(this.cap);
    this.views = [];
  }

  /** The event, refilled: the one object, with the columns' views of length `n`. */
  private view(n: number, sentMonoNs: number): Handoff {
    let v = this.views[n];
    if (v === undefined) {
      v = {
        asset: this.asset.subarray(0, n),
        tradeId: this.tradeId.subarray(0, n),
        tradeTime: this.tradeTime.subarray(0, n),
        recvMonoNs: this.recv.subarray(0, n),
      };
      if (n <= 1024) this.views[n] = v;
    }
    const e = this.event;
    e.count = n;
    e.asset = v.asset;
    e.tradeId = v.tradeId;
    e.tradeTime = v.tradeTime;
    e.recvMonoNs = v.recvMonoNs;
    e.sentMonoNs = sentMonoNs;
    return e;
  }
}

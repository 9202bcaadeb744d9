/** Test helpers for the NATS feed: trade streams, and a reader that records a consumer's events. */
import type { NatsConsumer, NatsConsumerEvent } from '../../ts/clients/nats';
import type { Trade } from '../../ts/types';

/** The real BTC trades, interleaved 1:1 with a synthetic ETHUSDT stream (prices in 0.01 steps). */
export function twoAssetStream(btc: readonly Trade[]): Trade[] {
  const out: Trade[] = [];
  btc.forEach((t, i) => {
    out.push(t);
    out.push({
      ...t,
      symbol: 'ETHUSDT',
      tradeId: 3_000_000_000 + i,
      price: (2500 + ((i * 37) % 2000) / 100).toFixed(2),
      qty: ((1 + ((i * 13) % 900)) / 1000).toFixed(3),
      maker: i % 3 === 0,
    });
  });
  return out;
}

/** Reads a consumer in the background and keeps every event, for assertions. */
export class Recorder {
  readonly events: NatsConsumerEvent[] = [];
  private readonly tradeList: Extract<NatsConsumerEvent, { kind: 'trade' }>[] = [];
  private readonly counts = new Map<string, number>();
  private readonly done: Promise<void>;
  private notify?: () => void;

  constructor(consumer: NatsConsumer) {
    this.done = (async () => {
      for await (const ev of consumer) {
        this.events.push(ev);
        if (ev.kind === 'trade') this.tradeList.push(ev);
        this.counts.set(ev.kind, (this.counts.get(ev.kind) ?? 0) + 1);
        this.notify?.();
      }
      this.notify?.();
    })();
  }

  /** The trades so far (a live array: do not modify). */
  trades(): readonly Extract<NatsConsumerEvent, { kind: 'trade' }>[] {
    return this.tradeList;
  }

  count(kind: NatsConsumerEvent['kind']): number {
    return this.counts.get(kind) ?? 0;
  }

  /** Resolves when `pred` holds; rejects after `timeoutMs` naming what it waited for. */
  async until(pred: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        const kinds = this.events.map((e) => e.kind);
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; events: ${JSON.stringify(kinds.slice(-20))} (${kinds.length})`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 50));
        this.notify = () => {
          clearTimeout(t);
          this.notify = undefined;
          setImmediate(r);
        };
      });
    }
  }

  finished(): Promise<void> {
    return this.done;
  }
}

/** The fields of a trade that must arrive exactly. */
export function key(t: { symbol: string; price: string; qty: string; maker: boolean; tradeId?: number; time?: number; tradeTime?: number }): string {
  return `${t.symbol} ${t.tradeId} ${t.time ?? t.tradeTime} ${t.price} ${t.qty} ${t.maker}`;
}

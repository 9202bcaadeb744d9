/**
 * The decoding consumer against the real BTCUSDT capture, wire v1 and v2: a consumer that pauses
 * is overrun, learns of it, resyncs from the header copy and then decodes every later trade
 * exactly (same decimal value, time, side and, in v2, id).
 */
import * as fs from 'node:fs';
import { Encoder, ShmConsumer, ShmPublisher, headerCopyOf } from '../ts/index';
import type { DecodedMessage, DecodedTrade, WireVersion } from '../ts/index';
import type { ShmDecodeEvent } from '../ts/clients/shm';
import { fixtureTrades } from './oracle/fixture';

const trades = fixtureTrades();
const BTC = [{ symbol: 'BTCUSDT', refPrice: '61800.30', refQty: '0.006', priceScale: 2, qtyScale: 3 }];
/** Decimal strings compared by value: v1 gives trailing zeros trimmed. */
const canon = (s: string): string => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);

const names: string[] = [];
afterEach(() => {
  for (const n of names.splice(0)) fs.rmSync(`/dev/shm/${n}`, { force: true });
});

async function next<T>(it: AsyncIterator<T>, ms = 10000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    it.next(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('iterator stalled')), ms);
    }),
  ]);
  clearTimeout(timer);
  if (r.done) throw new Error('iterator ended');
  return r.value;
}

describe.each(['v1', 'v2'] as WireVersion[])('decoding consumer, wire %s, real capture', (wire) => {
  it('is overrun while paused, resyncs from the header copy, then decodes every later trade exactly', async () => {
    const name = `ps-jest-decode-${wire}-${process.pid}`;
    names.push(name);
    const enc = new Encoder({ wire, assets: BTC, refTime: trades[0].tradeTime });
    const pub = ShmPublisher.create({ name, capacity: 16384, headerSource: () => headerCopyOf(enc) });
    const con = ShmConsumer.open(name);
    const it = con.decoded({ spinPolls: 100, yieldPolls: 5, sleepMs: 1 });
    let sent = 0;
    const publish = (n: number): void => {
      const batch = trades.slice(sent, Math.min(trades.length, sent + n));
      if (batch.length > 0) pub.publish(enc.encodeBatch(batch));
      sent += batch.length;
    };
    const check = (m: DecodedMessage | ShmDecodeEvent): DecodedTrade => {
      expect(m.kind).toBe('trade');
      const t = m as DecodedTrade;
      // One frame per trade, so the record's message number is the trade's index.
      const truth = trades[con.lastSeq()];
      expect([canon(t.price), canon(t.qty), t.time, t.maker]).toEqual([
        canon(truth.price),
        canon(truth.qty),
        truth.tradeTime,
        truth.maker,
      ]);
      if (wire === 'v2') expect(t.tradeId).toBe(truth.tradeId);
      return t;
    };

    // Phase 1: the consumer keeps up.
    publish(200);
    expect(await next(it)).toEqual({ kind: 'resync', seq: 0, skipped: 0 });
    for (let i = 0; i < 200; i++) check(await next(it));

    // Phase 2: the consumer pauses while 5000 trades arrive; the 16 KiB ring overflows.
    for (let i = 0; i < 100; i++) publish(50);
    const dropped = pub.stats().dropped;
    expect(dropped).toBeGreaterThan(0);

    // Phase 3: it resumes while trades keep coming (the producer answers its header request).
    const feeder = setInterval(() => publish(25), 1);
    const events: ShmDecodeEvent[] = [];
    let before = 0;
    let after = 0;
    try {
      for (let i = 0; i < 20000 && after < 3000; i++) {
        const m = await next(it);
        if (m.kind === 'resync' || (m.kind === 'lost' && 'scope' in m && m.scope === 'ring')) {
          events.push(m as ShmDecodeEvent);
          continue;
        }
        check(m);
        if (events.some((e) => e.kind === 'resync')) after++;
        else before++;
      }
    } finally {
      clearInterval(feeder);
    }
    expect(events.map((e) => e.kind)).toEqual(['lost', 'resync']);
    const lost = events[0] as { missing: number };
    const resync = events[1] as { seq: number; skipped: number };
    expect(lost.missing).toBe(dropped);
    // Everything is accounted for: decoded, dropped, or skipped on the way to the header copy.
    expect(200 + before + lost.missing + resync.skipped).toBe(resync.seq);
    expect(after).toBe(3000);
    await pub.close();
    con.close();
  });
});

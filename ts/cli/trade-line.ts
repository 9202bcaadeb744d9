/** How the consumer commands (`tcp-client`, `shm-consumer`, `nats-consumer`) print a decoded trade. */
import type { DecodedTrade } from '../codec';

/**
 * One line for a trade, with its exchange-to-client latency (`nowMs` minus the trade time `T`).
 * `json`: one object with symbol, time (ms), price and qty (decimal strings), maker, and tradeId,
 * type and seq when the wire carries them. `withSeq`: print the stream sequence number, which
 * only a consumer of every symbol can know.
 */
export function formatTrade(t: DecodedTrade, json: boolean, nowMs: number, withSeq = true): string {
  const latencyMs = nowMs - t.time;
  if (json) {
    const o: Record<string, unknown> = { symbol: t.symbol, time: t.time, price: t.price, qty: t.qty, maker: t.maker };
    if (t.tradeId !== undefined) o.tradeId = t.tradeId;
    if (t.type !== undefined) o.type = t.type;
    if (withSeq && t.seq !== undefined) o.seq = t.seq;
    o.latencyMs = latencyMs;
    return JSON.stringify(o);
  }
  const id = t.tradeId !== undefined ? ` id=${t.tradeId}` : '';
  // m = buyer is maker, so the aggressor sold.
  const side = t.maker ? 'SELL' : 'BUY ';
  return `${new Date(t.time).toISOString()} ${t.symbol} ${side} ${t.qty} @ ${t.price}${id} latency=${latencyMs}ms`;
}

/** Turns one WebSocket text frame into what it means. Exact strings for price and quantity. */
import type { Trade } from '../types';

export type ParsedFrame =
  | { kind: 'trade'; trade: Trade }
  | { kind: 'error'; code: unknown; msg: string }
  | { kind: 'result'; id: unknown }
  | { kind: 'unknown'; event: string }
  | { kind: 'malformed'; why: string };

interface TradePayload {
  e?: unknown;
  E?: unknown;
  T?: unknown;
  s?: unknown;
  t?: unknown;
  p?: unknown;
  q?: unknown;
  X?: unknown;
  m?: unknown;
}

/**
 * Accepts combined-stream frames (`{"stream":..,"data":{..}}`) and raw payloads (`/ws/<stream>`).
 * Unknown keys such as `st` are ignored; a trade missing a field or with a wrong type is malformed.
 */
export function parseFrame(text: string, recvWallNs: bigint, recvMonoNs: bigint): ParsedFrame {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    return { kind: 'malformed', why: 'not JSON' };
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return { kind: 'malformed', why: 'not an object' };
  const o = obj as { data?: unknown; error?: unknown; result?: unknown; id?: unknown };
  if (o.error !== undefined) {
    const err = o.error as { code?: unknown; msg?: unknown } | null;
    return { kind: 'error', code: err?.code, msg: typeof err?.msg === 'string' ? err.msg : JSON.stringify(o.error) };
  }
  if ('result' in o && 'id' in o) return { kind: 'result', id: o.id };
  const d = (o.data !== undefined ? o.data : o) as TradePayload;
  if (typeof d !== 'object' || d === null) return { kind: 'malformed', why: 'data is not an object' };
  if (d.e !== 'trade') return { kind: 'unknown', event: typeof d.e === 'string' ? d.e : '(none)' };
  if (
    typeof d.s !== 'string' ||
    typeof d.t !== 'number' ||
    !Number.isSafeInteger(d.t) ||
    typeof d.p !== 'string' ||
    typeof d.q !== 'string' ||
    typeof d.T !== 'number' ||
    typeof d.E !== 'number' ||
    typeof d.m !== 'boolean'
  ) {
    return { kind: 'malformed', why: 'trade lacks a field or has a wrong type' };
  }
  return {
    kind: 'trade',
    trade: {
      symbol: d.s,
      tradeTime: d.T,
      eventTime: d.E,
      tradeId: d.t,
      price: d.p,
      qty: d.q,
      maker: d.m,
      type: typeof d.X === 'string' ? d.X : 'MARKET',
      recvWallNs,
      recvMonoNs,
    },
  };
}

let monoBase = process.hrtime.bigint();
let wallBase = BigInt(Date.now()) * 1_000_000n;
/** Re-read the wall clock this often so weeks of monotonic drift (NTP slewing) cannot pile up. */
const REANCHOR_NS = 60_000_000_000n;

/** Wall-clock ns of a monotonic reading (`process.hrtime.bigint()`) taken a moment ago. */
export function wallOfMono(mono: bigint): bigint {
  if (mono - monoBase > REANCHOR_NS) {
    monoBase = mono;
    wallBase = BigInt(Date.now()) * 1_000_000n;
  }
  return wallBase + (mono - monoBase);
}

/** Receive timestamps: monotonic ns, and wall ns derived from it (ns resolution, one clock read). */
export function receiveTimes(): { wall: bigint; mono: bigint } {
  const mono = process.hrtime.bigint();
  return { wall: wallOfMono(mono), mono };
}

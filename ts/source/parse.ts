/** Turns one WebSocket text frame into what it means. Exact strings for price and quantity. */
import type { Trade } from '../types';

export type ParsedFrame =
  | { kind: 'trade'; trade: Trade }
  | { kind: 'error'; code: unknown; msg: string }
  | { kind: 'result'; id: unknown }
  | { kind: 'unknown'; event: string }
  /** `symbol`: the trade's `s`, when the frame is a trade object that has one. */
  | { kind: 'malformed'; why: string; symbol?: string };

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
  const symbol = typeof d.s === 'string' ? { symbol: d.s } : {};
  if (typeof d.t === 'number' && !Number.isSafeInteger(d.t)) {
    // Real ids are ~5e9; one past 2^53 cannot be carried exactly (a JS number, the wire's gap ids).
    return { kind: 'malformed', why: `trade id ${unsafeId(text, d.t)} is not an integer in 0..2^53`, ...symbol };
  }
  if (
    typeof d.s !== 'string' ||
    typeof d.t !== 'number' ||
    typeof d.p !== 'string' ||
    typeof d.q !== 'string' ||
    typeof d.T !== 'number' ||
    typeof d.E !== 'number' ||
    typeof d.m !== 'boolean'
  ) {
    return { kind: 'malformed', why: 'trade lacks a field or has a wrong type', ...symbol };
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

/** The id as the exchange wrote it (JSON.parse rounds past 2^53), for the log line. */
function unsafeId(text: string, parsed: number): string {
  return /"t"\s*:\s*(-?[0-9][0-9.eE+-]*)/.exec(text)?.[1] ?? String(parsed);
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

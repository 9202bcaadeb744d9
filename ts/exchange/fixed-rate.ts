/**
 * Fixed-pace trade flow for load tests: an exact number of trades per second per symbol, as
 * ready-made WebSocket frames. Prices and sizes come from a cycle of the symbol's random walk made
 * once at start, so a trade costs a few string joins (its id and time change), and each tick's
 * trades leave in one socket write per connection: 10^6 frames/s fit in a fraction of a core.
 */
import type { SymbolWalk, TradePayload } from './generator';

/** Trades of the walk precomputed per symbol; the flow cycles through them. */
const CYCLE = 4096;

/** One symbol's trades of one tick, as WebSocket text frames for both stream kinds. */
export interface TickBlock {
  /** The `<symbol>@trade` stream name. */
  stream: string;
  /** Frames of raw streams (`/ws/<stream>`): the trade object alone. */
  raw(): string;
  /** Frames of combined streams (`/stream?streams=`): `{"stream":...,"data":...}`. */
  combined(): string;
  count: number;
  /** The last trade of the block (for REST history). */
  last: TradePayload;
}

interface Cycle {
  walk: SymbolWalk;
  stream: string;
  /** `,"p":"...","q":"...","X":"MARKET","m":true}` per cycle position. */
  tails: string[];
  payloads: TradePayload[];
  pos: number;
}

/** Unmasked server-to-client text frame header for a payload of `len` bytes (ASCII payloads). */
function wsHeader(len: number): string {
  if (len < 126) return String.fromCharCode(0x81, len);
  if (len < 65536) return String.fromCharCode(0x81, 126, len >> 8, len & 0xff);
  // Trade payloads are far below 64 KiB; larger would need the 8-byte form.
  throw new Error(`trade payload of ${len} bytes is too long for the fixed-rate flow`);
}

export class FixedRateFlow {
  private readonly cycles: Cycle[];
  private readonly start = process.hrtime.bigint();
  private readonly sent: number[];

  /**
   * `rate`: trades per second per symbol; at most `maxCatchUpMs` worth of trades go out in one tick
   * when the process fell behind (then the flow runs late rather than in one huge burst).
   */
  constructor(
    walks: SymbolWalk[],
    private readonly rate: number,
    private readonly maxCatchUpMs = 50,
  ) {
    this.sent = walks.map(() => 0);
    this.cycles = walks.map((walk) => {
      const payloads: TradePayload[] = [];
      const tails: string[] = [];
      for (let i = 0; i < CYCLE; i++) {
        const p = walk.next(0);
        payloads.push(p);
        tails.push(`,"p":"${p.p}","q":"${p.q}","X":"${p.X}","m":${p.m}}`);
      }
      // The walk's ids were only used to make the cycle; the flow's first trade takes the first.
      walk.nextId -= CYCLE;
      return { walk, stream: `${walk.spec.symbol.toLowerCase()}@trade`, tails, payloads, pos: 0 };
    });
  }

  /** Trades sent so far, all symbols. */
  get total(): number {
    return this.sent.reduce((s, x) => s + x, 0);
  }

  /** The blocks due now (one per symbol that has trades due), stamped with `nowMs`. */
  tick(nowMs: number): TickBlock[] {
    const elapsedNs = Number(process.hrtime.bigint() - this.start);
    const due = Math.floor((elapsedNs * this.rate) / 1e9);
    const cap = Math.max(1, Math.ceil((this.rate * this.maxCatchUpMs) / 1000));
    const out: TickBlock[] = [];
    this.cycles.forEach((c, s) => {
      const n = Math.min(due - this.sent[s], cap);
      if (n <= 0) return;
      this.sent[s] += n;
      out.push(this.block(c, n, nowMs));
    });
    return out;
  }

  private block(c: Cycle, n: number, ms: number): TickBlock {
    const symbol = c.walk.spec.symbol;
    const head = `{"e":"trade","E":${ms},"T":${ms},"s":"${symbol}","t":`;
    const firstId = c.walk.nextId;
    const firstPos = c.pos;
    c.walk.nextId += n;
    c.pos = (c.pos + n) % CYCLE;
    const lastPos = (firstPos + n - 1) % CYCLE;
    const lastPayload = c.payloads[lastPos];
    const last: TradePayload = { ...lastPayload, E: ms, T: ms, t: firstId + n - 1 };
    const build = (prefix: string, suffix: string): string => {
      let s = '';
      for (let i = 0, pos = firstPos; i < n; i++, pos = pos + 1 === CYCLE ? 0 : pos + 1) {
        const json = prefix + head + (firstId + i) + c.tails[pos] + suffix;
        s += wsHeader(json.length) + json;
      }
      return s;
    };
    let raw: string | undefined;
    let combined: string | undefined;
    return {
      stream: c.stream,
      count: n,
      last,
      raw: () => (raw ??= build('', '')),
      combined: () => (combined ??= build(`{"stream":"${c.stream}","data":`, '}')),
    };
  }
}

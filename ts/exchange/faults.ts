/** Fault injection switches of the local exchange, set from options or flipped by tests. */

/** Frames that a real feed can produce but a client must survive. */
export const GARBAGE_FRAMES: string[] = [
  'not json {',
  '[]',
  'null',
  '{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTCUSDT","t":"oops"}}',
  '{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","s":"BTCUSDT"}}',
  '{"error":{"code":2,"msg":"Invalid request: unknown stream"},"id":null}',
  '{"result":null,"id":1}',
  '\u0000\u0001\u0002',
];

export interface FaultOptions {
  /** Terminate each connection after it has been sent this many data frames. */
  dropAfter?: number;
  /** Stop sending data to each connection (without closing) after this many data frames. */
  stallAfter?: number;
  /** Send one garbage frame after every N data frames. */
  garbageEvery?: number;
  /** Make every Nth trade id of each symbol go missing (an id jump the client must report). */
  skipEvery?: number;
  /** Never answer client pings (the client's pong deadline must catch it). */
  ignorePings?: boolean;
}

export class Faults {
  dropAfter?: number;
  stallAfter?: number;
  garbageEvery?: number;
  skipEvery?: number;
  ignorePings?: boolean;
  /** Upgrades are refused with 503 until this time (ms since epoch). */
  refuseUntil = 0;
  /** Upgrades refused with 503 while > 0 (each refusal counts one down). */
  refuseCount = 0;
  /** The next N REST requests fail with `restStatus`. */
  restFailures = 0;
  restStatus = 429;
  retryAfterSec = 1;

  constructor(opts: FaultOptions = {}) {
    Object.assign(this, opts);
  }

  /** True when this upgrade must be refused (and counts it). */
  refuseNow(): boolean {
    if (Date.now() < this.refuseUntil) return true;
    if (this.refuseCount > 0) {
      this.refuseCount -= 1;
      return true;
    }
    return false;
  }

  /** True when this REST request must fail (and counts it). */
  failRestNow(): boolean {
    if (this.restFailures > 0) {
      this.restFailures -= 1;
      return true;
    }
    return false;
  }
}

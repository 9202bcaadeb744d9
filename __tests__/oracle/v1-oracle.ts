/**
 * An independent, pure-TypeScript v1 decoder written from ../shared/spec/wire-v1.md alone, the way
 * the original clients decode: float running sums. Differential tests compare the codec against it;
 * it shares no code with the library.
 */
export interface OracleTrade {
  asset: number;
  symbol: string;
  maker: boolean;
  time: number;
  /** Running float sum, as the original clients compute it. */
  price: number;
  qty: number;
}

function uvarint(b: Uint8Array, pos: { p: number }): bigint {
  let v = 0n;
  let shift = 0n;
  for (let i = 0; i < 10; i++) {
    if (pos.p >= b.length) throw new Error('oracle: truncated varint');
    const byte = b[pos.p++];
    v |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return v;
    shift += 7n;
  }
  throw new Error('oracle: varint longer than 10 bytes');
}

function svarint(b: Uint8Array, pos: { p: number }): bigint {
  const z = uvarint(b, pos);
  return (z >> 1n) ^ -(z & 1n);
}

export class V1Oracle {
  readonly symbols: string[] = [];
  private readonly times: number[] = [];
  private readonly prices: number[] = [];
  readonly refQty: number[] = [];

  constructor(header: Uint8Array) {
    const dv = new DataView(header.buffer, header.byteOffset, header.byteLength);
    if (header[0] !== 0x01) throw new Error(`oracle: version ${header[0]} is not 1`);
    const n = header[1];
    let p = 2;
    for (let i = 0; i < n; i++) {
      const len = header[p];
      this.symbols.push(Buffer.from(header.subarray(p + 1, p + 1 + len)).toString('latin1'));
      p += 1 + len;
    }
    const ref = Number(dv.getBigUint64(p, true));
    p += 8;
    for (let i = 0; i < n; i++) {
      this.times.push(ref);
      this.prices.push(dv.getFloat64(p + 8 * i, true));
      this.refQty.push(dv.getFloat64(p + 8 * n + 8 * i, true));
    }
  }

  decode(m: Uint8Array): OracleTrade {
    const asset = m[0] & 0x7f;
    if (asset >= this.symbols.length) throw new Error(`oracle: asset ${asset} not in header`);
    const pos = { p: 1 };
    const dt = svarint(m, pos);
    const dp = svarint(m, pos);
    const q = uvarint(m, pos);
    this.times[asset] += Number(dt);
    this.prices[asset] += Number(dp) / 100000;
    return {
      asset,
      symbol: this.symbols[asset],
      maker: (m[0] & 0x80) !== 0,
      time: this.times[asset],
      price: this.prices[asset],
      qty: Number(q) / 100000,
    };
  }
}

/** Payloads of a u32-LE framed batch. */
export function oracleFrames(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let p = 0;
  while (p < b.length) {
    const len = b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] * 2 ** 24);
    out.push(b.subarray(p + 4, p + 4 + len));
    p += 4 + len;
  }
  return out;
}

/** The original service's encoder (float state, truncating deltas), to show its drift. */
export class OriginalV1Encoder {
  private readonly last: number[];

  constructor(refPrices: number[]) {
    this.last = [...refPrices];
  }

  /** Returns the price delta and quantity integers the original put on the wire. */
  encode(asset: number, price: number, qty: number): { dp: number; q: number } {
    const dp = Math.trunc((price - this.last[asset]) * 1e5);
    this.last[asset] = price;
    return { dp, q: Math.trunc(qty * 1e5) };
  }
}

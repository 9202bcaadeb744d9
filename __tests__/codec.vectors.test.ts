/**
 * The shared wire vectors (testdata/wire-vectors.json, also replayed by cargo test) through the
 * public TS API, the independent v1 oracle, and the worked examples of docs/wire-format.md.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Decoder, Encoder, PerpSignalError } from '../ts/index';
import type { AssetSpec, DecodedMessage, WireVersion } from '../ts/index';
import type { GapEvent, Trade } from '../ts/types';
import { V1Oracle } from './oracle/v1-oracle';

interface VTrade {
  symbol: string;
  time: number;
  tradeId: number;
  price: string;
  qty: string;
  maker: boolean;
  type: string;
}
interface Op {
  trade?: VTrade;
  gap?: GapEvent;
  heartbeat?: number;
  snapshot?: boolean;
  payload: string;
}
interface Vector {
  name: string;
  doc: boolean;
  wire: WireVersion;
  refTime: number;
  assets: AssetSpec[];
  header: string;
  ops: Op[];
}
interface Hostile {
  name: string;
  wire?: WireVersion;
  header?: string;
  payload?: string;
  code: string;
}

const root = path.resolve(__dirname, '..');
const doc = JSON.parse(fs.readFileSync(path.join(root, 'testdata', 'wire-vectors.json'), 'utf8')) as {
  vectors: Vector[];
  hostile: Hostile[];
};

const toTrade = (t: VTrade): Trade => ({
  symbol: t.symbol,
  tradeTime: t.time,
  eventTime: t.time,
  tradeId: t.tradeId,
  price: t.price,
  qty: t.qty,
  maker: t.maker,
  type: t.type,
  recvWallNs: 0n,
  recvMonoNs: 0n,
});

/** Canonical form of a decimal string: no trailing fraction zeros. */
const canon = (s: string): string => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);

function errorOf(fn: () => unknown): PerpSignalError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PerpSignalError);
    return e as PerpSignalError;
  }
  throw new Error('expected an error');
}

describe('shared wire vectors', () => {
  it('has vectors for both wires and hostile cases', () => {
    expect(doc.vectors.filter((v) => v.wire === 'v1').length).toBeGreaterThanOrEqual(2);
    expect(doc.vectors.filter((v) => v.wire === 'v2').length).toBeGreaterThanOrEqual(2);
    expect(doc.hostile.length).toBeGreaterThanOrEqual(15);
  });

  it('contains the spec worked example 81 8E 02 AC 02 96 01', () => {
    const v = doc.vectors.find((x) => x.name === 'v1 spec worked example');
    expect(v?.ops[0].payload).toBe('818e02ac029601');
  });

  for (const v of doc.vectors) {
    it(`encodes and decodes byte-exactly: ${v.name}`, () => {
      const e = new Encoder({ wire: v.wire, assets: v.assets, refTime: v.refTime });
      expect(e.header().toString('hex')).toBe(v.header);
      const d = new Decoder(Buffer.from(v.header, 'hex'));
      expect(d.wire).toBe(v.wire);
      expect(d.symbols).toEqual(v.assets.map((a) => a.symbol));
      const oracle = v.wire === 'v1' ? new V1Oracle(Buffer.from(v.header, 'hex')) : null;
      for (const op of v.ops) {
        let bytes: Buffer | null;
        if (op.trade) bytes = e.encode(toTrade(op.trade));
        else if (op.gap) bytes = e.gap(op.gap);
        else if (op.heartbeat !== undefined) bytes = e.heartbeat(op.heartbeat);
        else bytes = e.snapshot();
        expect(bytes?.toString('hex')).toBe(op.payload);
        const m: DecodedMessage = d.decode(Buffer.from(op.payload, 'hex'));
        if (op.trade) {
          expect(m.kind).toBe('trade');
          if (m.kind !== 'trade') continue;
          expect([m.symbol, m.time, m.maker]).toEqual([op.trade.symbol, op.trade.time, op.trade.maker]);
          if (v.wire === 'v2') {
            expect([m.tradeId, m.type]).toEqual([op.trade.tradeId, op.trade.type]);
            expect(canon(m.price)).toBe(canon(op.trade.price));
            expect(canon(m.qty)).toBe(canon(op.trade.qty));
          } else {
            // v1: the 1e-5 value with trailing zeros trimmed.
            expect(m.price).toBe(canon(op.trade.price));
            expect(m.qty).toBe(canon(op.trade.qty));
            const o = oracle!.decode(Buffer.from(op.payload, 'hex'));
            expect([o.symbol, o.time, o.maker]).toEqual([m.symbol, m.time, m.maker]);
            expect(Math.abs(o.price - Number(op.trade.price))).toBeLessThan(5e-6);
            expect(Math.abs(o.qty - Number(op.trade.qty))).toBeLessThan(5e-6);
          }
        } else if (op.gap) {
          expect(m).toMatchObject({ kind: 'gap', symbol: op.gap.symbol, lastId: op.gap.lastId, nextId: op.gap.nextId, reason: op.gap.reason });
        } else if (op.heartbeat !== undefined) {
          expect(m).toMatchObject({ kind: 'heartbeat', time: op.heartbeat });
        } else {
          expect(m.kind).toBe('snapshot');
        }
      }
    });
  }

  for (const h of doc.hostile) {
    it(`refuses hostile input with ${h.code}: ${h.name}`, () => {
      if (h.header !== undefined) {
        const err = errorOf(() => new Decoder(Buffer.from(h.header!, 'hex')));
        expect(err.code).toBe(h.code);
      } else {
        const v = doc.vectors.find((x) => x.wire === h.wire)!;
        const d = new Decoder(Buffer.from(v.header, 'hex'));
        const err = errorOf(() => d.decode(Buffer.from(h.payload!, 'hex')));
        expect(err.code).toBe(h.code);
        expect(err.message.length).toBeGreaterThan(10);
      }
    });
  }

  it('docs/wire-format.md shows every doc vector as a worked example', () => {
    const md = fs.readFileSync(path.join(root, 'docs', 'wire-format.md'), 'utf8');
    const spaced = (hex: string) => hex.toUpperCase().replace(/(..)(?!$)/g, '$1 ');
    const shown = doc.vectors.filter((v) => v.doc);
    expect(shown.length).toBeGreaterThanOrEqual(4);
    for (const v of shown) {
      expect(md).toContain(spaced(v.header));
      for (const op of v.ops) expect(md).toContain(spaced(op.payload));
    }
  });
});

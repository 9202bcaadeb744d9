/**
 * The columnar decode path (`Decoder.decodeColumns`, `connectTcp({ columns: true }).columns()`):
 * exactly the messages of the object path, on the real capture (v2 and v1) and on synthetic
 * streams with gaps, heartbeats, snapshots, lost frames and values past 2^53.
 */
import { Decoder, Encoder, frame, decimalString, splitFrames, TradeColumns } from '../ts/index';
import type { DecodedMessage, TcpColumnsEvent, Trade } from '../ts/index';
import { PerpSignalError } from '../ts/errors';
import { fixtureTrades } from './oracle/fixture';
import { startClient, startFanout, useCleanups } from './helpers/fanout';
import { expectSameTrades, makeTrades } from './helpers/stream';

const defer = useCleanups();
const BTC = [{ symbol: 'BTCUSDT', refPrice: '61800.30', refQty: '0.006', priceScale: 2, qtyScale: 3 }];

function chunks<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** Decodes `framed` both ways with two decoders of the same header; returns both outputs. */
function bothWays(header: Buffer, batches: Buffer[]): { objects: DecodedMessage[]; columns: TradeColumns[] } {
  const a = new Decoder(header);
  const b = new Decoder(header);
  const objects = batches.flatMap((x) => a.decodeFrames(x));
  const columns = batches.map((x) => b.decodeColumns(x));
  return { objects, columns };
}

/** A loop rather than toEqual: jest's deep equality is slow on 10^4 objects. */
function expectSameMessages(got: DecodedMessage[], want: DecodedMessage[]): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (JSON.stringify(got[i]) !== JSON.stringify(want[i])) {
      throw new Error(`message ${i}: columns gave ${JSON.stringify(got[i])}, objects ${JSON.stringify(want[i])}`);
    }
  }
}

describe('decodeColumns on the real capture (21,313 BTCUSDT trades)', () => {
  const trades = fixtureTrades();

  it.each(['v1', 'v2'] as const)('%s: every row equals the object path, and the mantissas are exact', (wire) => {
    const e = new Encoder({ wire, assets: BTC, refTime: trades[0].tradeTime });
    const header = e.header();
    const batches = chunks(trades, 731).map((b) => e.encodeBatch(b));
    const { objects, columns } = bothWays(header, batches);
    expect(columns.reduce((s, c) => s + c.length, 0)).toBe(trades.length);
    expectSameMessages(columns.flatMap((c) => c.messages()), objects);
    // The numbers themselves, without the string accessors: value = mantissa x 10^-scale.
    let base = 0;
    for (const c of columns) {
      // Spot checks (the first 50 rows of each batch); the full comparison is above.
      for (let i = 0; i < Math.min(c.length, 50); i++) {
        const t = trades[base + i];
        const [ip, fp = ''] = t.price.split('.');
        const scale = c.priceScale[i];
        expect(c.price[i]).toBe(Number(ip + fp.padEnd(scale, '0')));
        expect(c.time[i]).toBe(t.tradeTime);
        expect(c.maker[i]).toBe(t.maker ? 1 : 0);
        expect(c.tradeId[i]).toBe(wire === 'v2' ? t.tradeId : -1);
        if (wire === 'v2') expect(c.types[c.typeCode[i]]).toBe(t.type);
      }
      base += c.length;
    }
    expectSameTrades(
      columns.flatMap((c) => c.messages()),
      trades,
      `${wire} columns`,
    );
  });
});

describe('decodeColumns events', () => {
  it('gaps, heartbeats and snapshots come as events placed before the right row', () => {
    const e = new Encoder({ wire: 'v2', assets: BTC, refTime: 1_723_100_000_000 });
    const header = e.header();
    const [t1, t2, t3] = makeTrades(3, 7).map((t) => ({ ...t, symbol: 'BTCUSDT' }));
    const batch = Buffer.concat([
      e.encodeBatch([t1]),
      frame(e.gap({ symbol: 'BTCUSDT', lastId: t1.tradeId, nextId: t2.tradeId, reason: 'jump' }) as Buffer),
      frame(e.heartbeat(1_723_100_000_500) as Buffer),
      e.encodeBatch([t2]),
      frame(e.snapshot()),
      e.encodeBatch([t3]),
    ]);
    const { objects, columns } = bothWays(header, [batch]);
    const [c] = columns;
    expect(c.length).toBe(3);
    expect(c.events.map((ev) => [ev.kind, ev.row])).toEqual([
      ['gap', 1],
      ['heartbeat', 1],
      ['snapshot', 2],
    ]);
    expectSameMessages(c.messages(), objects);
  });

  it('lost frames are surfaced as lost events, exactly as the object path reports them', () => {
    const e = new Encoder({ wire: 'v2', assets: BTC, refTime: 1_723_100_000_000 });
    const header = e.header();
    const trades = makeTrades(40, 3).map((t) => ({ ...t, symbol: 'BTCUSDT' }));
    const frames = splitFrames(e.encodeBatch(trades));
    // Frames 10..12 never arrive.
    const received = Buffer.concat(frames.filter((_, i) => i < 10 || i > 12).map((p) => frame(p)));
    const { objects, columns } = bothWays(header, [received]);
    const [c] = columns;
    const lost = c.events.filter((ev) => ev.kind === 'lost');
    expect(lost.length).toBeGreaterThan(0);
    expect(lost[0]).toMatchObject({ kind: 'lost', row: 10 });
    expectSameMessages(c.messages(), objects);
    // No trade after the loss is given as if it were exact: the object path withholds the same.
    expect(objects.filter((m) => m.kind === 'trade').length).toBe(c.length);
  });

  it('mantissas past 2^53 are NaN in the columns and exact through the accessors', () => {
    const big = [{ symbol: 'BIGUSDT', refPrice: '90000000000.12345678', refQty: '123456789012.345678', priceScale: 8, qtyScale: 6 }];
    const e = new Encoder({ wire: 'v2', assets: big, refTime: 1_723_100_000_000 });
    const trade: Trade = {
      symbol: 'BIGUSDT',
      tradeId: 1,
      tradeTime: 1_723_100_000_001,
      price: '90000000000.12345679',
      qty: '123456789012.345677',
      maker: false,
      type: 'MARKET',
      eventTime: 1_723_100_000_001,
      recvWallNs: 0n,
      recvMonoNs: 0n,
    };
    const { objects, columns } = bothWays(e.header(), [e.encodeBatch([trade])]);
    const [c] = columns;
    expect(Number.isNaN(c.price[0])).toBe(true);
    expect(Number.isNaN(c.qty[0])).toBe(true);
    expect(c.priceString(0)).toBe('90000000000.12345679');
    expect(c.qtyString(0)).toBe('123456789012.345677');
    expectSameMessages(c.messages(), objects);
  });

  it('decimalString formats mantissas like the native decoder', () => {
    expect(decimalString(6180030, 2, false)).toBe('61800.30');
    expect(decimalString(6180030, 2, true)).toBe('61800.3');
    expect(decimalString(5, 3, false)).toBe('0.005');
    expect(decimalString(-5, 3, false)).toBe('-0.005');
    expect(decimalString(100000, 5, true)).toBe('1');
    expect(decimalString(0, 0, false)).toBe('0');
    expect(decimalString(42, 0, true)).toBe('42');
  });
});

describe('TcpClient columns mode', () => {
  it('yields TradeColumns per read that decode exactly what was published', async () => {
    const { fanout, encoder, port } = await startFanout(defer, 'v2');
    const c = startClient(defer, port, { columns: true });
    const trades = makeTrades(5000, 11);
    const got: DecodedMessage[] = [];
    let connected = 0;
    const reading = (async () => {
      for await (const ev of c.columns() as AsyncGenerator<TcpColumnsEvent>) {
        if (ev.kind === 'connected') {
          connected++;
          for (const b of chunks(trades, 250)) fanout.publish(encoder.encodeBatch(b));
        } else if (ev.kind === 'columns') {
          got.push(...ev.messages());
          if (got.length >= trades.length) break;
        }
      }
    })();
    await reading;
    expect(connected).toBe(1);
    expectSameTrades(got, trades, 'columns client');
  });

  it('refuses to mix the object and columns iterators, with a typed error', async () => {
    const { port } = await startFanout(defer, 'v2');
    const objects = startClient(defer, port);
    const columns = startClient(defer, port, { columns: true });
    await expect(objects.columns().next()).rejects.toThrow(PerpSignalError);
    await expect(columns.batches().next()).rejects.toThrow(/columns: true; iterate columns\(\)/);
    await expect(columns[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'E_INVALID_ARG' });
  });
});

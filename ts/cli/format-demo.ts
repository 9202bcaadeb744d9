/**
 * `perp-signal format-demo` (the original's binary-format example): shows a header, then encodes
 * and decodes synthetic trades in a loop and checks every decoded value against what went in.
 */
import type { CommandModule } from 'yargs';
import { Decoder, Encoder, type WireVersion } from '../codec';
import { DEFAULT_SYMBOLS } from '../exchange/symbols';
import { SymbolWalk, seededRandom } from '../exchange/generator';
import { PerpSignalError } from '../errors';
import type { Trade } from '../types';
import { decimalsOf } from './forward';
import { checkRange } from './options';

interface DemoArgs {
  wire: string;
  count: number;
  show: number;
  seed: number;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex').replace(/(..)/g, '$1 ').trim();
}

export const formatDemoCommand: CommandModule<object, DemoArgs> = {
  command: 'format-demo',
  describe: 'Show the wire format: a header, then an encode/decode loop over synthetic trades, checked exactly',
  builder: (y) =>
    y
      .option('wire', { choices: ['v2', 'v1'], default: 'v2', describe: 'Wire format to show' })
      .option('count', { type: 'number', default: 100000, describe: 'Trades to encode and decode' })
      .option('show', { type: 'number', default: 5, describe: 'Frames to print in hex' })
      .option('seed', { type: 'number', default: 1, describe: 'Seed of the synthetic walk' })
      .check((a) => {
        checkRange('count', a.count, 1, 10_000_000, true);
        checkRange('show', a.show, 0, Infinity, true);
        return true;
      }),
  handler: (a) => {
    const wire = a.wire as WireVersion;
    // v1 carries 5 decimals: leave out the small-tick symbol there (v1 would refuse it, by design).
    const specs = DEFAULT_SYMBOLS.filter((s) => wire === 'v2' || decimalsOf(s.tickSize) <= 5);
    const rnd = seededRandom(a.seed);
    const walks = specs.map((s) => new SymbolWalk(s, rnd));
    const t0 = Date.now();
    const trades: Trade[] = [];
    for (let i = 0; i < a.count; i++) {
      const w = walks[Math.floor(rnd() * walks.length)];
      const p = w.next(t0 + i);
      trades.push({
        symbol: p.s,
        tradeTime: p.T,
        eventTime: p.E,
        tradeId: p.t,
        price: p.p,
        qty: p.q,
        maker: p.m,
        type: p.X,
        recvWallNs: 0n,
        recvMonoNs: 0n,
      });
    }
    const encoder = new Encoder({
      wire,
      refTime: t0,
      assets: specs.map((s) => ({
        symbol: s.symbol,
        refPrice: s.startPrice,
        refQty: '0',
        priceScale: decimalsOf(s.tickSize),
        qtyScale: decimalsOf(s.stepSize),
      })),
    });
    const header = encoder.header();
    const out = process.stdout;
    out.write(`wire ${wire}: header of ${header.length} bytes for ${specs.map((s) => s.symbol).join(', ')}\n`);
    out.write(`  ${hex(header)}\n`);
    const decoder = new Decoder(header);
    const started = process.hrtime.bigint();
    const framed = encoder.encodeBatch(trades);
    const decoded = decoder.decodeFrames(framed);
    const ns = Number(process.hrtime.bigint() - started);
    let pos = 0;
    for (let i = 0; i < Math.min(a.show, trades.length); i++) {
      const len = framed.readUInt32LE(pos);
      const t = trades[i];
      out.write(`  ${t.symbol} ${t.maker ? 'm' : ' '} ${t.qty} @ ${t.price}  ->  ${hex(framed.subarray(pos + 4, pos + 4 + len))}\n`);
      pos += 4 + len;
    }
    const norm = (s: string): string => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
    let wrong = 0;
    decoded.forEach((d, i) => {
      const t = trades[i];
      if (d.kind !== 'trade' || d.symbol !== t.symbol || d.time !== t.tradeTime || d.maker !== t.maker) wrong++;
      else if (norm(d.price) !== norm(t.price) || norm(d.qty) !== norm(t.qty)) wrong++;
      else if (wire === 'v2' && (d.tradeId !== t.tradeId || d.type !== t.type)) wrong++;
    });
    const payload = framed.length - 4 * trades.length;
    out.write(
      `${trades.length} trades: ${(payload / trades.length).toFixed(2)} bytes/trade (+4 length prefix), ` +
        `encode+decode ${(ns / trades.length).toFixed(0)} ns/trade, ${wrong} decoded wrong\n`,
    );
    if (wrong > 0 || decoded.length !== trades.length) {
      throw new PerpSignalError('E_DEMO_MISMATCH', `${wrong} trades did not decode to what was sent`);
    }
  },
};

/**
 * Codec benchmark through Node: `npm run bench:codec` (this, then the Rust core figures).
 * Prints batch and single-call throughput, bytes per trade for v1 and v2 on the real capture and
 * a synthetic BTC/ETH/SOL stream, and the ratio to the pure-TS v1 oracle decoder.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import type { AssetSpec, WireVersion } from '../ts/index';
import type { Trade } from '../ts/types';
import { SYNTHETIC_ASSETS, syntheticTrades } from './codec-stream';
import { fixtureTrades } from '../__tests__/oracle/fixture';
import { V1Oracle, oracleFrames } from '../__tests__/oracle/v1-oracle';

// The built library (npm run build), as a user gets it; this file runs from dist-bench/bench/.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const lib = require(path.resolve(__dirname, '..', '..', 'dist')) as typeof import('../ts/index');
const { Decoder, Encoder } = lib;

const N = Number(process.env.BENCH_TRADES ?? 500_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 1000);

/**
 * Seconds of this process's CPU time (user + system) `fn` took: on a shared machine wall time also
 * counts other processes' turns on the core. (GC threads count too, which only makes it slower.)
 */
function secs(fn: () => void): number {
  const c = process.cpuUsage();
  fn();
  const u = process.cpuUsage(c);
  return (u.user + u.system) / 1e6;
}

/** Best of `runs`. */
function best(runs: number, fn: () => void): number {
  let b = Infinity;
  for (let i = 0; i < runs; i++) b = Math.min(b, secs(fn));
  return b;
}

function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

const fmt = (x: number, d = 1) => x.toFixed(d).padStart(8);

function bytesPerTrade(wire: WireVersion, assets: AssetSpec[], trades: Trade[]): number {
  const e = new Encoder({ wire, assets, refTime: trades[0].tradeTime });
  const framed = Buffer.concat(chunks(trades, BATCH).map((b) => e.encodeBatch(b)));
  return (framed.length - 4 * trades.length) / trades.length;
}

function main(): void {
  const trades = syntheticTrades(N, 1);
  const batches = chunks(trades, BATCH);
  console.log(
    `node ${process.version}, ${N} synthetic BTC/ETH/SOL trades, batches of ${BATCH}, best of 3, CPU time; ` +
      `load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores`,
  );
  for (const wire of ['v1', 'v2'] as const) {
    let framed: Buffer[] = [];
    const enc = best(3, () => {
      const e = new Encoder({ wire, assets: SYNTHETIC_ASSETS, refTime: trades[0].tradeTime });
      framed = batches.map((b) => e.encodeBatch(b));
    });
    const header = new Encoder({ wire, assets: SYNTHETIC_ASSETS, refTime: trades[0].tradeTime }).header();
    let count = 0;
    const dec = best(3, () => {
      const d = new Decoder(header);
      count = 0;
      for (const f of framed) count += d.decodeFrames(f).length;
    });
    if (count !== N) throw new Error(`decoded ${count} of ${N}`);
    console.log(`${wire} encodeBatch (Trade objects -> framed bytes): ${fmt(N / enc / 1e6, 2)} M trades/s`);
    console.log(`${wire} decodeFrames (framed bytes -> plain objects): ${fmt(N / dec / 1e6, 2)} M trades/s`);

    const single = trades.slice(0, 200_000);
    const e1 = new Encoder({ wire, assets: SYNTHETIC_ASSETS, refTime: trades[0].tradeTime });
    const payloads: Buffer[] = new Array(single.length);
    // Warm the JIT first, then time.
    for (let i = 0; i < 20_000; i++) payloads[i] = e1.encode(single[i]);
    const tEnc = secs(() => {
      for (let i = 20_000; i < single.length; i++) payloads[i] = e1.encode(single[i]);
    });
    const d1 = new Decoder(header);
    for (let i = 0; i < 20_000; i++) d1.decode(payloads[i]);
    const tDec = secs(() => {
      for (let i = 20_000; i < payloads.length; i++) d1.decode(payloads[i]);
    });
    const timed = single.length - 20_000;
    console.log(`${wire} encode(trade) single call: ${fmt((tEnc * 1e9) / timed, 0)} ns;  decode(payload) single call: ${fmt((tDec * 1e9) / timed, 0)} ns`);

    if (wire === 'v1') {
      // The pure-TS oracle (a spec-following float decoder) on the same frames.
      const payloadsAll = framed.map((f) => oracleFrames(f));
      const tOracle = best(3, () => {
        const o = new V1Oracle(header);
        for (const ps of payloadsAll) for (const p of ps) o.decode(p);
      });
      console.log(
        `v1 TS oracle decode (payload views -> objects, float sums): ${fmt(N / tOracle / 1e6, 2)} M trades/s; native decodeFrames is ${(tOracle / dec).toFixed(1)}x the oracle`,
      );
    }
  }

  let fixture: Trade[] | null = null;
  try {
    fixture = fixtureTrades();
  } catch (e) {
    console.log(`(real capture not found: ${(e as Error).message})`);
  }
  const btc = [{ symbol: 'BTCUSDT', refPrice: '61800.30', refQty: '0.006', priceScale: 2, qtyScale: 3 }];
  console.log('mean payload bytes per trade (the u32 length prefix adds 4):');
  if (fixture) {
    console.log(`  real BTCUSDT capture (${fixture.length} trades): v1 ${bytesPerTrade('v1', btc, fixture).toFixed(3)}, v2 ${bytesPerTrade('v2', btc, fixture).toFixed(3)}`);
  }
  const syn = trades.slice(0, 200_000);
  console.log(`  synthetic BTC/ETH/SOL (${syn.length} trades): v1 ${bytesPerTrade('v1', SYNTHETIC_ASSETS, syn).toFixed(3)}, v2 ${bytesPerTrade('v2', SYNTHETIC_ASSETS, syn).toFixed(3)}`);
}

main();

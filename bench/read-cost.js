#!/usr/bin/env node
/**
 * The forwarder's fixed cost per socket read at low rates, in one process, without the kernel's
 * TCP write (docs/performance.md, "Fixed cost per read"). At 10k msgs/s nearly every read of the
 * exchange socket holds one frame, so what counts is what one read costs, not the cost per byte.
 *
 *   [a] one `Encoder.ingest` call holding one frame (3 and 127 assets, the symbol last)
 *   [b] one `ShmPublisher.publish` of one frame
 *   [c] one read -> ring published: a WebSocket frame into the builtin frame reader ->
 *       BinanceSource -> Pipeline (Stats attached) -> ShmPublisher, reads `BENCH_GAP_NS` apart
 *       (default 100 000: 10k msgs/s), split at the ingest call and the publish
 *
 * Needs `npm run build` first (reads dist/). Run pinned for steadier tails: `taskset -c 1 node
 * bench/read-cost.js`. Every figure is from `process.hrtime.bigint()` stamps (~40 ns each).
 */
'use strict';
const path = require('node:path');
const root = path.join(__dirname, '..');
const { Encoder, BinanceSource } = require(path.join(root, 'dist/index.js'));
const { Pipeline } = require(path.join(root, 'dist/pipeline.js'));
const { Stats } = require(path.join(root, 'dist/observe/stats.js'));
const { FrameReader } = require(path.join(root, 'dist/source/rfc6455.js'));
const { FramePool } = require(path.join(root, 'dist/source/frame-pool.js'));
const { ShmPublisher, headerCopyOf } = require(path.join(root, 'dist/transports/shm.js'));

const N = Number(process.env.BENCH_N || 60000);
const GAP_NS = BigInt(process.env.BENCH_GAP_NS || 100000);
const now = () => Number(process.hrtime.bigint());
const spec = (symbol) => ({ symbol, refPrice: '61800.30', refQty: '0.001', priceScale: 2, qtyScale: 3 });

function tradeText(symbol, id, i) {
  return `{"stream":"${symbol.toLowerCase()}@trade","data":{"e":"trade","E":1723161256322,"T":${1723161256322 + i},"s":"${symbol}","t":${id},"p":"61800.${10 + (i % 80)}","q":"0.006","X":"MARKET","m":${i % 2 === 0}}}`;
}

function line(name, ns) {
  const s = Array.from(ns.subarray(ns.length >> 2)).sort((a, b) => a - b);
  const q = (p) => (s[Math.floor(p * (s.length - 1))] / 1000).toFixed(2);
  console.log(`  ${name.padEnd(36)} p50 ${q(0.5)} µs, p99 ${q(0.99)} µs, p99.9 ${q(0.999)} µs`);
}

function ingestOne(assetCount) {
  const symbols = Array.from({ length: assetCount }, (_, i) => (i === assetCount - 1 ? 'BTCUSDT' : `A${i}USDT`));
  const enc = new Encoder({ wire: 'v2', assets: symbols.map(spec), refTime: 1723161256000 });
  const state = { lastIds: new Float64Array(assetCount).fill(NaN), blocked: new Uint8Array(assetCount) };
  const pool = new FramePool();
  let id = 5266583935;
  state.lastIds[assetCount - 1] = id - 1;
  const ns = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    const f = Buffer.from(tradeText('BTCUSDT', id++, i));
    pool.clear();
    pool.push(f, 0, f.length, 0, 0);
    const t0 = now();
    const r = enc.ingest(pool, 0, state);
    ns[i] = now() - t0;
    if (r.consumed !== 1) throw new Error(`frame ${i} not consumed: ${r.stop}`);
  }
  line(`[a] Encoder.ingest, 1 frame, ${assetCount} assets`, ns);
}

function publishOne() {
  const pub = ShmPublisher.create({ name: `perp-signal-read-cost-${process.pid}`, capacity: 1 << 24, headerSource: () => Buffer.from('header') });
  const b = Buffer.alloc(14, 1);
  b.writeUInt32LE(10, 0);
  const ns = new Float64Array(N);
  try {
    for (let i = 0; i < N; i++) {
      const t0 = now();
      pub.publish(b);
      ns[i] = now() - t0;
    }
  } finally {
    void pub.close();
  }
  line('[b] ShmPublisher.publish, 1 frame', ns);
}

function wsFrame(text) {
  const body = Buffer.from(text);
  const head = body.length < 126 ? Buffer.from([0x81, body.length]) : Buffer.from([0x81, 126, body.length >> 8, body.length & 255]);
  return Buffer.concat([head, body]);
}

async function readToRing() {
  const symbols = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
  const ids = [5266583935, 3000000000, 1000000000];
  const reads = Array.from({ length: N }, (_, i) => wsFrame(tradeText(symbols[i % 3], ids[i % 3]++, i)));
  const encoder = new Encoder({ wire: 'v2', assets: symbols.map(spec), refTime: 1723161256000 });
  const ring = ShmPublisher.create({ name: `perp-signal-read-cost-${process.pid}`, capacity: 1 << 24, headerSource: () => headerCopyOf(encoder) });
  let ingestAt = 0;
  let ingestDone = 0;
  let publishAt = 0;
  let published = 0;
  const ingest = encoder.ingest.bind(encoder);
  encoder.ingest = (frames, from, state) => {
    ingestAt = now();
    const r = ingest(frames, from, state);
    ingestDone = now();
    return r;
  };
  const transport = {
    name: 'shm',
    publish(b) {
      publishAt = now();
      ring.publish(b);
      published = now();
    },
    consumers: () => 0,
    drops: () => 0,
    close: () => ring.close(),
  };
  const source = new BinanceSource({ symbols, wsUrl: 'ws://127.0.0.1:1', restUrl: 'http://127.0.0.1:1' });
  // The bench plays StreamConnection (builtin client): one stamp per read, the source drained when the read ends.
  const conn = { readEnds: true };
  const slot = { index: 0, symbols, conn, candidate: undefined };
  const pipeline = new Pipeline({ source, encoder, transports: [transport], stats: new Stats(symbols), heartbeatMs: 0 });
  await pipeline.start({ startSource: false });
  let recv = 0;
  const reader = new FrameReader(
    { text: (b, s, e) => source.onFrame(slot, conn, b, s, e, recv), binary() {}, ping() {}, pong() {}, close() {}, error: (_c, why) => { throw new Error(why); } },
    1 << 20,
  );
  const total = new Float64Array(N);
  const parts = [new Float64Array(N), new Float64Array(N), new Float64Array(N), new Float64Array(N)];
  for (let i = 0; i < N; i++) {
    const until = process.hrtime.bigint() + GAP_NS;
    while (process.hrtime.bigint() < until);
    recv = now();
    reader.push(reads[i]);
    source.drain();
    total[i] = published - recv;
    parts[0][i] = ingestAt - recv;
    parts[1][i] = ingestDone - ingestAt;
    parts[2][i] = publishAt - ingestDone;
    parts[3][i] = published - publishAt;
    // Let timers and I/O run now and then, as the forwarder's loop does between reads.
    if (i % 64 === 63) await new Promise((r) => setImmediate(r));
  }
  const fast = pipeline.fastTrades;
  await pipeline.stop();
  line(`[c] read -> ring published (${Number(GAP_NS) / 1000} µs apart)`, total);
  line('    of which read -> ingest call', parts[0]);
  line('    of which Encoder.ingest', parts[1]);
  line('    of which ingest -> publish', parts[2]);
  line('    of which ShmPublisher.publish', parts[3]);
  console.log(`  fast path ${fast} of ${N} frames (the first of each symbol takes the slow path)`);
}

(async () => {
  console.log(`read-cost bench: node ${process.version}, ${N} samples each, first quarter dropped as warm-up`);
  ingestOne(3);
  ingestOne(127);
  publishOne();
  await readToRing();
})().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});

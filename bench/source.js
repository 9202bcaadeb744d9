#!/usr/bin/env node
// Source benchmark: `npm run build:ts && node bench/source.js`. Prints figures, asserts nothing.
// 1. parseFrame alone over the real fixture frames (ns per frame).
// 2. The whole source path (local exchange replay -> WebSocket -> parse -> dedupe/gap -> 'trade'),
//    exchange and client in one process sharing the CPU, fixture replayed as fast as possible.
// 3. Exchange-to-'trade'-event latency over 127.0.0.1 at a steady rate (one process, one clock).
'use strict';
const fs = require('node:fs');
const zlib = require('node:zlib');
const { BinanceSource, LocalExchange } = require('../dist/index.js');
const { parseFrame } = require('../dist/source/parse.js');

const { fixture } = require('./fixture');

function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function parseOnly() {
  const frames = zlib
    .gunzipSync(fs.readFileSync(fixture))
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(l.indexOf(' ') + 1));
  const rounds = 10;
  let sink = 0;
  for (const f of frames) sink += parseFrame(f, 0n, 0n).kind.length; // warm-up
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) for (const f of frames) sink += parseFrame(f, 0n, 0n).kind.length;
  const ns = Number(process.hrtime.bigint() - t0) / (rounds * frames.length);
  console.log(`parseFrame: ${ns.toFixed(0)} ns/frame over ${rounds} x ${frames.length} fixture frames (${sink > 0 ? 'ok' : '?'})`);
}

async function replayThroughput() {
  const ex = new LocalExchange({ replay: fixture, speed: 0 });
  const addr = await ex.start();
  const src = new BinanceSource({ symbols: ['BTCUSDT'], wsUrl: addr.wsUrl, restUrl: addr.restUrl });
  let n = 0;
  let first = 0n;
  let last = 0n;
  src.on('trade', (t) => {
    if (n === 0) first = t.recvMonoNs;
    last = t.recvMonoNs;
    n += 1;
  });
  const t0 = process.hrtime.bigint();
  await src.start();
  for (let i = 0; i < 600 && n < 21313; i++) await new Promise((r) => setTimeout(r, 50));
  const total = Number(process.hrtime.bigint() - t0) / 1e9;
  const span = Number(last - first) / 1e9;
  console.log(
    `replay as fast as possible: ${n} trades, first..last receive ${span.toFixed(3)} s = ${(n / span).toFixed(0)} trades/s ` +
      `(connect + replay ${total.toFixed(3)} s; gaps ${src.stats().gaps})`,
  );
  await src.stop();
  await ex.stop();
}

async function latency() {
  const ex = new LocalExchange({ symbols: ['BTCUSDT'], rate: 0 });
  const addr = await ex.start();
  const src = new BinanceSource({ symbols: ['BTCUSDT'], wsUrl: addr.wsUrl, restUrl: addr.restUrl });
  const sentAt = new Map();
  const lat = [];
  src.on('trade', (t) => {
    const s = sentAt.get(t.tradeId);
    if (s !== undefined) lat.push(Number(t.recvMonoNs - s) / 1000);
  });
  await src.start();
  const count = 3000;
  for (let i = 0; i < count; i++) {
    const before = process.hrtime.bigint();
    const [p] = ex.publish('BTCUSDT', 1);
    sentAt.set(p.t, before);
    await new Promise((r) => setTimeout(r, 1));
  }
  await new Promise((r) => setTimeout(r, 200));
  lat.sort((a, b) => a - b);
  console.log(
    `exchange publish -> source receive (127.0.0.1, one process, ${lat.length} trades ~1 ms apart): ` +
      `p50 ${quantile(lat, 0.5).toFixed(0)} us, p99 ${quantile(lat, 0.99).toFixed(0)} us, max ${lat[lat.length - 1].toFixed(0)} us`,
  );
  await src.stop();
  await ex.stop();
}

(async () => {
  await parseOnly();
  await replayThroughput();
  await latency();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});

#!/usr/bin/env node
/**
 * NATS benchmark: forwarder -> nats-server -> consumer on loopback, for 1 and 10 consumers.
 *   - latency p50/p99/p99.9 at a fixed rate (default 10,000 and 50,000 trades/s), from the moment the
 *     forwarder encodes a batch to the moment a consumer has decoded the trade;
 *   - the highest rate: trades pushed as fast as the forwarder can, msgs/s decoded per consumer, and
 *     how many were lost (core NATS drops for slow consumers; the consumer then says so).
 *
 *   npm run bench:nats                # everything (about a minute)
 *   npm run bench:nats -- --quick     # shorter runs, for a smoke test
 *
 * Three processes: nats-server, the forwarder (codec + NatsPublisher), and one consumer process
 * holding N NatsConsumers (each its own NATS connection). Every process stamps with process.hrtime
 * (CLOCK_MONOTONIC, one clock for the whole machine); the parent joins stamps by trade number.
 * Uses the built library (dist/): run `npm run build:ts` first (the npm script does).
 */
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const DIST = path.join(__dirname, '..', 'dist');
const PREFIX = 'bench';
const { nowNs, SYMBOLS, makeTrade, paced, lines, send } = require('./feed');

// ---------------------------------------------------------------- roles (child processes)

async function roleForwarder(url, rate, total, stampsFile) {
  const { Encoder } = require(path.join(DIST, 'codec'));
  const { NatsPublisher } = require(path.join(DIST, 'transports', 'nats'));
  const encoder = new Encoder({ wire: 'v2', assets: SYMBOLS.map(({ symbol, refPrice, refQty }) => ({ symbol, refPrice, refQty })) });
  const pub = await NatsPublisher.connect({ url, prefix: PREFIX, encoder });
  const state = SYMBOLS.map((s) => ({ ...s }));
  send({ ready: true });
  lines(process.stdin, async (l) => {
    if (l === 'go') {
      const { stamps, seconds } = await paced(rate, total, (from, to, now) => {
        const mono = BigInt(now);
        const batch = new Array(to - from);
        for (let k = from; k < to; k++) batch[k - from] = makeTrade(k, state, mono);
        pub.publish(encoder.encodeBatch(batch));
      });
      fs.writeFileSync(stampsFile, Buffer.from(stamps.buffer));
      send({ done: true, seconds, stats: pub.stats() });
    } else if (l === 'exit') {
      await pub.close();
      process.exit(0);
    }
  });
}

function roleConsumers(url, n, total, outFile) {
  const { NatsConsumer } = require(path.join(DIST, 'clients', 'nats'));
  const arrivals = new Float64Array(n * total);
  const stats = [];
  let finished = 0;
  let synced = 0;
  const base = SYMBOLS.map((s) => s.id);
  const finish = () => {
    fs.writeFileSync(outFile, Buffer.from(arrivals.buffer));
    send({ done: true, stats });
    process.exit(0);
  };
  for (let c = 0; c < n; c++) {
    (async () => {
      const consumer = await NatsConsumer.connect({ url, prefix: PREFIX });
      let got = 0;
      let lost = 0;
      let first = 0;
      let last = 0;
      const idle = () => setTimeout(() => consumer.close(), 3000);
      let timer;
      for await (const batch of consumer.batches()) {
        const t = nowNs();
        for (const m of batch) {
          if (m.kind === 'synced' && m.sync === 1 && ++synced === n) send({ ready: true });
          if (m.kind === 'lost') lost++;
          if (m.kind !== 'trade') continue;
          if (!first) first = t;
          last = t;
          // Trade number from its id: trade k of symbol a has id base[a] + floor(k / 2).
          const k = (m.tradeId - base[m.asset]) * 2 + m.asset;
          if (k >= 0 && k < total) arrivals[c * total + k] = t;
          got++;
        }
        clearTimeout(timer);
        if (got >= total) break;
        timer = idle();
      }
      clearTimeout(timer);
      await consumer.close();
      stats[c] = { got, lost, seconds: (last - first) / 1e9 };
      if (++finished === n) finish();
    })();
  }
}

// ---------------------------------------------------------------- parent

function child(args) {
  const p = spawn(process.execPath, [__filename, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const waiters = [];
  lines(p.stdout, (l) => {
    const msg = JSON.parse(l);
    const i = waiters.findIndex((w) => w.pred(msg));
    if (i >= 0) waiters.splice(i, 1)[0].resolve(msg);
  });
  return {
    p,
    wait: (pred, ms = 60_000) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`child ${args[0]} timed out`)), ms);
        waiters.push({ pred, resolve: (m) => (clearTimeout(t), resolve(m)) });
      }),
    say: (s) => p.stdin.write(s + '\n'),
  };
}

function quantiles(xs) {
  const s = Float64Array.from(xs).sort();
  const q = (f) => s[Math.min(s.length - 1, Math.floor(f * s.length))];
  return { p50: q(0.5), p99: q(0.99), p999: q(0.999), max: s[s.length - 1] };
}

async function startNats() {
  const { ensureNatsServer } = require('../scripts/ensure-nats-server.js');
  const p = spawn(ensureNatsServer(), ['-a', '127.0.0.1', '-p', '-1'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const port = await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`nats-server did not start:\n${log}`)), 10_000);
    p.stderr.on('data', (d) => {
      log += d;
      const m = /Listening for client connections on 127\.0\.0\.1:(\d+)/.exec(log);
      if (m && /Server is ready/.test(log)) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
  });
  return { url: `nats://127.0.0.1:${port}`, stop: () => p.kill('SIGTERM') };
}

async function run(url, consumers, rate, total) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nats-bench-'));
  const stampsFile = path.join(dir, 'stamps');
  const arrFile = path.join(dir, 'arrivals');
  const fwd = child(['forwarder', url, String(rate), String(total), stampsFile]);
  await fwd.wait((m) => m.ready);
  const cons = child(['consumers', url, String(consumers), String(total), arrFile]);
  await cons.wait((m) => m.ready);
  const doneC = cons.wait((m) => m.done, 300_000);
  fwd.say('go');
  const f = await fwd.wait((m) => m.done, 300_000);
  const c = await doneC;
  fwd.say('exit');
  const stamps = new Float64Array(fs.readFileSync(stampsFile).buffer.slice(0));
  const arr = new Float64Array(fs.readFileSync(arrFile).buffer.slice(0));
  fs.rmSync(dir, { recursive: true, force: true });
  const lat = [];
  for (let i = 0; i < consumers; i++) {
    for (let k = 0; k < total; k++) {
      const t = arr[i * total + k];
      if (t) lat.push((t - stamps[k]) / 1000);
    }
  }
  const got = c.stats.reduce((s, x) => s + x.got, 0);
  const lost = c.stats.reduce((s, x) => s + x.lost, 0);
  const perConsumer = c.stats.map((x) => (x.seconds > 0 ? x.got / x.seconds : 0));
  return {
    consumers,
    rate: rate || 'max',
    sent: total,
    sendRate: Math.round(total / f.seconds),
    delivered: got,
    missing: consumers * total - got,
    lostEvents: lost,
    consumerMsgsPerS: Math.round(Math.min(...perConsumer)),
    aggregateMsgsPerS: Math.round(perConsumer.reduce((a, b) => a + b, 0)),
    latencyUs: quantiles(lat),
    publisherDrops: f.stats.dropped,
  };
}

async function main() {
  const [role, ...a] = process.argv.slice(2);
  if (role === 'forwarder') return roleForwarder(a[0], Number(a[1]), Number(a[2]), a[3]);
  if (role === 'consumers') return roleConsumers(a[0], Number(a[1]), Number(a[2]), a[3]);
  const quick = process.argv.includes('--quick');
  const nats = await startNats();
  const secs = quick ? 1 : 4;
  const results = [];
  try {
    for (const consumers of [1, 10]) {
      for (const rate of [10_000, 50_000]) results.push(await run(nats.url, consumers, rate, rate * secs));
      results.push(await run(nats.url, consumers, 0, quick ? 50_000 : 300_000));
    }
  } finally {
    nats.stop();
  }
  console.log(`node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'})`);
  console.log('consumers  rate(t/s)  fwd t/s  sent     delivered  lost-ev  consumer t/s  p50 us  p99 us  p99.9 us  max us');
  for (const r of results) {
    const l = r.latencyUs;
    console.log(
      [
        String(r.consumers).padStart(9),
        String(r.rate).padStart(10),
        String(r.sendRate).padStart(8),
        String(r.sent).padStart(8),
        String(r.delivered).padStart(10),
        String(r.lostEvents).padStart(8),
        String(r.consumerMsgsPerS).padStart(13),
        l.p50.toFixed(0).padStart(7),
        l.p99.toFixed(0).padStart(7),
        l.p999.toFixed(0).padStart(9),
        l.max.toFixed(0).padStart(7),
      ].join(' '),
    );
  }
  console.log(JSON.stringify(results));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

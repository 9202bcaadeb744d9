#!/usr/bin/env node
// Cross-process benchmark of the /dev/shm ring: `npm run bench:shm [-- --messages N]`.
// Measures, in one run: the cache-line ping-pong floor between two processes, push->pop latency
// for a spinning Rust consumer and for a polling Node consumer (16..64-byte messages, paced), and
// Rust->Rust throughput; prints every latency also as a multiple of the floor's p50.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const N = opt('messages', 1_000_000);
const INTERVAL_NS = opt('interval-ns', 2000);
const THROUGHPUT_N = opt('throughput-messages', 20_000_000);
const exe = path.join(root, 'target', 'release', 'examples', 'shm_bench');

function build() {
  const r = spawnSync('cargo', ['build', '--release', '-p', 'perp-signal-core', '--example', 'shm_bench'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new Error('cargo build of the shm_bench example failed');
}

function runRust(args) {
  const r = spawnSync(exe, args, { encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`shm_bench ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function percentiles(arr) {
  const v = Float64Array.from(arr).sort();
  const p = (q) => v[Math.min(v.length - 1, Math.floor(v.length * q))];
  return { count: v.length, p50: p(0.5), p99: p(0.99), p999: p(0.999), max: v[v.length - 1] };
}

async function nodeConsumer() {
  const { ShmConsumer } = require(path.join(root, 'dist'));
  const name = `ps-bench-node-${process.pid}`;
  const child = spawn(exe, ['produce', name, String(N), String(INTERVAL_NS)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  let c;
  const openBy = Date.now() + 10_000;
  while (!c) {
    try {
      c = ShmConsumer.open(name);
    } catch (e) {
      if (Date.now() > openBy) throw e;
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  let lost = 0;
  c.on('lost', (e) => (lost += e.missing));
  const lat = new Float64Array(N);
  let got = 0;
  const buf = Buffer.alloc(64);
  const deadline = Date.now() + 120_000;
  // The polling consumer: a synchronous loop on popInto, as an HFT strategy thread would run.
  while (got + lost < N) {
    const len = c.popInto(buf);
    if (len >= 0) {
      const t1 = process.hrtime.bigint();
      lat[got++] = Number(t1 - buf.readBigUInt64LE(0));
    } else if ((got & 0xff) === 0 && Date.now() > deadline) break;
  }
  c.close();
  await exited;
  const produced = JSON.parse(out.trim() || '{}');
  return { test: 'rust-node', lost, dropped: produced.dropped, ...percentiles(lat.subarray(0, got)) };
}

async function main() {
  build();
  const floor = runRust(['floor', '200000']);
  const rr = runRust(['latency', String(N), String(INTERVAL_NS)]);
  const rn = await nodeConsumer();
  const tp = runRust(['throughput', String(THROUGHPUT_N)]);
  const x = (v) => (v / floor.p50).toFixed(2) + 'x';
  console.log(`messages ${N} of 16..64 bytes, one every ${INTERVAL_NS} ns; latencies in ns (x floor p50)`);
  console.log(`floor (cache line ping-pong, one way): p50 ${floor.p50}  p99 ${floor.p99}  p99.9 ${floor.p999}`);
  for (const r of [rr, rn]) {
    console.log(
      `${r.test.padEnd(10)} p50 ${r.p50} (${x(r.p50)})  p99 ${r.p99} (${x(r.p99)})  p99.9 ${r.p999} (${x(r.p999)})` +
        `  max ${r.max}  received ${r.count}  lost ${r.lost}`,
    );
  }
  console.log(`throughput rust->rust, 32-byte messages: ${(tp.msgs_per_s / 1e6).toFixed(1)} M msgs/s (${tp.count} in ${tp.seconds} s)`);
  console.log(JSON.stringify({ floor, rustRust: rr, rustNode: rn, throughput: tp }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

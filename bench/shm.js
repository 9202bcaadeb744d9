#!/usr/bin/env node
// Cross-process benchmark of the /dev/shm ring: `npm run bench:shm [-- --messages N]`.
// Measures, in one run: the cache-line ping-pong floor between two processes, push->pop latency
// for a spinning Rust consumer and for a polling Node consumer (16..64-byte messages, one in
// flight at a time so each sample is one hand-off, not queueing), and Rust->Rust and Rust->Node
// throughput. The Node consumer runs twice, with its JS fast path (records read from the mapping
// in JS) and without it (one N-API call per record), unless `--node-path fast|native`.
// Producers run on CPU 0 and consumers on CPU 1 (when the machine has two), and the floor is
// measured right before each latency test, which is reported as a multiple of it. The floor is
// measured the way the ring is: the ping carries its send time (CLOCK_MONOTONIC) across one
// cache line and the other process reads its clock on arrival; half the round trip is printed
// beside it, and every ratio against it too.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const N = opt('messages', 1_000_000);
const PAUSE_NS = opt('pause-ns', 500);
const THROUGHPUT_N = opt('throughput-messages', 20_000_000);
const NODE_THROUGHPUT_N = opt('node-throughput-messages', 5_000_000);
const nodePathArg = argv.indexOf('--node-path') >= 0 ? argv[argv.indexOf('--node-path') + 1] : 'both';
const NODE_PATHS = nodePathArg === 'both' ? ['fast', 'native'] : [nodePathArg];
const FLOOR_ROUNDS = 200_000;
const exe = path.join(root, 'target', 'release', 'examples', 'shm_bench');
const pin = os.cpus().length >= 2;
const env = pin ? { ...process.env, PERP_SIGNAL_BENCH_CPU: '0' } : process.env;

function percentiles(arr) {
  const v = Float64Array.from(arr).sort();
  const p = (q) => v[Math.min(v.length - 1, Math.floor(v.length * q))];
  return { count: v.length, p50: p(0.5), p99: p(0.99), p999: p(0.999), max: v[v.length - 1] };
}

function openConsumer(name, fastPath) {
  const { ShmConsumer } = require(path.join(root, 'dist'));
  const openBy = Date.now() + 10_000;
  for (;;) {
    try {
      return ShmConsumer.open(name, { jsFastPath: fastPath === 'fast' });
    } catch (e) {
      if (Date.now() > openBy) throw e;
      spawnSync('sleep', ['0.002']);
    }
  }
}

/** The Node side of the rust->node latency test, run in its own (pinned) process. */
function nodeConsumerMain(name, n, fastPath) {
  const c = openConsumer(name, fastPath);
  let lost = 0;
  c.on('lost', (e) => (lost += e.missing));
  const lat = new Float64Array(n);
  let got = 0;
  const buf = Buffer.alloc(64);
  const deadline = Date.now() + 120_000;
  // The polling consumer: a synchronous loop on popInto, as an HFT strategy thread would run.
  while (got + lost < n) {
    const len = c.popInto(buf, 100_000);
    if (len >= 0) {
      const t1 = process.hrtime.bigint();
      lat[got++] = Number(t1 - buf.readBigUInt64LE(0));
    } else if ((got & 0xff) === 0 && Date.now() > deadline) break;
  }
  c.close();
  process.stdout.write(JSON.stringify({ lost, ...percentiles(lat.subarray(0, got)) }) + '\n');
}

/** The Node side of the rust->node throughput test: pop as fast as possible. */
function nodeDrainMain(name, n, fastPath) {
  const c = openConsumer(name, fastPath);
  const buf = Buffer.alloc(64);
  const deadline = Date.now() + 120_000;
  let got = 0;
  let first = 0n;
  while (got < n) {
    if (c.popInto(buf, 100_000) >= 0) {
      if (got++ === 0) first = process.hrtime.bigint();
    } else if (Date.now() > deadline) break;
  }
  const seconds = Number(process.hrtime.bigint() - first) / 1e9;
  c.close();
  process.stdout.write(JSON.stringify({ count: got, seconds, msgs_per_s: Math.round(got / seconds) }) + '\n');
}

function build() {
  const r = spawnSync('cargo', ['build', '--release', '-p', 'perp-signal-core', '--example', 'shm_bench'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new Error('cargo build of the shm_bench example failed');
}

function runRust(args) {
  const r = spawnSync(exe, args, { encoding: 'utf8', timeout: 180_000, env });
  if (r.status !== 0) throw new Error(`shm_bench ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

/** A Rust producer role and a Node consumer role (pinned to CPUs 0 and 1), run together. */
async function rustToNode(producerArgs, consumerRole, n, fastPath) {
  const name = `ps-bench-node-${process.pid}-${fastPath}`;
  const producer = spawn(exe, [producerArgs[0], name, ...producerArgs.slice(1)], { stdio: ['ignore', 'pipe', 'inherit'], env });
  let pout = '';
  producer.stdout.on('data', (d) => (pout += d));
  const pdone = new Promise((resolve) => producer.on('exit', resolve));
  const cmd = pin ? 'taskset' : process.execPath;
  const args = [...(pin ? ['-c', '1', process.execPath] : []), __filename, consumerRole, name, String(n), fastPath];
  const consumer = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let cout = '';
  consumer.stdout.on('data', (d) => (cout += d));
  const [code] = await Promise.all([new Promise((resolve) => consumer.on('exit', resolve)), pdone]);
  if (code !== 0) throw new Error(`node consumer exited with ${code}`);
  const produced = JSON.parse(pout.trim() || '{}');
  return { dropped: produced.dropped, ...JSON.parse(cout.trim()) };
}

async function main() {
  build();
  const floor1 = runRust(['floor', String(FLOOR_ROUNDS)]);
  const rr = runRust(['latency', String(N), String(PAUSE_NS)]);
  const pairs = [[rr, floor1]];
  const nodeTp = [];
  for (const fp of NODE_PATHS) {
    const floor = runRust(['floor', String(FLOOR_ROUNDS)]);
    const rn = await rustToNode(['produce', String(N), String(PAUSE_NS)], '--node-consumer', N, fp);
    pairs.push([{ test: `rust-node (${fp})`, ...rn }, floor]);
    const t = await rustToNode(['flood', String(NODE_THROUGHPUT_N)], '--node-drain', NODE_THROUGHPUT_N, fp);
    nodeTp.push({ test: `rust-node (${fp})`, ...t });
  }
  const tp = runRust(['throughput', String(THROUGHPUT_N)]);
  console.log(
    `messages ${N} of 16..64 bytes, one in flight, ${PAUSE_NS / 2}..${1.5 * PAUSE_NS} ns apart;` +
      ` latencies in ns (x the floor's p50 measured just before)${pin ? '; producer on CPU 0, consumer on CPU 1' : ''}`,
  );
  for (const [r, f] of pairs) {
    const h = f.half_rtt;
    const x = (v) => `${(v / f.p50).toFixed(2)}x, ${(v / h.p50).toFixed(2)}x rtt/2`;
    console.log(
      `floor (one cache line, one way, stamp carried): p50 ${f.p50}  p99 ${f.p99}  p99.9 ${f.p999}` +
        `;  round trip / 2: p50 ${h.p50}  p99 ${h.p99}`,
    );
    console.log(
      `${r.test.padEnd(18)} p50 ${r.p50} (${x(r.p50)})  p99 ${r.p99} (${x(r.p99)})  p99.9 ${r.p999} (${x(r.p999)})` +
        `  max ${r.max}  received ${r.count}  lost ${r.lost}`,
    );
  }
  console.log(`throughput rust->rust, 32-byte messages: ${(tp.msgs_per_s / 1e6).toFixed(1)} M msgs/s (${tp.count} in ${tp.seconds} s)`);
  for (const t of nodeTp) {
    console.log(`throughput ${t.test}, 32-byte messages: ${(t.msgs_per_s / 1e6).toFixed(2)} M msgs/s (${t.count} in ${t.seconds.toFixed(3)} s)`);
  }
  console.log(JSON.stringify({ latency: pairs, throughput: tp, nodeThroughput: nodeTp }));
}

/**
 * `node bench/shm.js --node-local`: the Node consumer's own cost per record, both paths, in one
 * process (push 1000 records with ShmPublisher.publish, time popInto of each; no cross-core
 * hand-off in it). Best of 3 rounds of 3,000,000 pops.
 */
function nodeLocalMain() {
  const { ShmConsumer, ShmPublisher } = require(path.join(root, 'dist'));
  const framed = Buffer.alloc(1000 * 36);
  for (let i = 0; i < 1000; i++) framed.writeUInt32LE(32, i * 36);
  const buf = Buffer.alloc(64);
  for (const fastPath of ['fast', 'native']) {
    const name = `ps-bench-local-${process.pid}-${fastPath}`;
    const pub = ShmPublisher.create({ name, capacity: 1 << 20 });
    const c = ShmConsumer.open(name, { jsFastPath: fastPath === 'fast' });
    let best = Infinity;
    for (let round = 0; round < 3; round++) {
      let ns = 0n;
      for (let k = 0; k < 3000; k++) {
        pub.publish(framed);
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < 1000; i++) if (c.popInto(buf) < 0) throw new Error('ring ran empty');
        ns += process.hrtime.bigint() - t0;
      }
      best = Math.min(best, Number(ns) / 3e6);
    }
    c.close();
    pub.close();
    console.log(`node popInto, ${fastPath} path: ${best.toFixed(1)} ns per 32-byte record`);
  }
}

if (argv[0] === '--node-local') {
  nodeLocalMain();
} else if (argv[0] === '--node-consumer') {
  nodeConsumerMain(argv[1], Number(argv[2]), argv[3]);
} else if (argv[0] === '--node-drain') {
  nodeDrainMain(argv[1], Number(argv[2]), argv[3]);
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}

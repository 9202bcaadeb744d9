#!/usr/bin/env node
// End-to-end benchmark: `npm run bench:e2e` (builds first). Prints figures, asserts nothing.
// Stream: the real BTCUSDT capture (../shared/fixtures) merged with as many synthetic ETHUSDT and
// SOLUSDT trades from the local exchange's generator, written as a replay file to /tmp.
// 1. Throughput at full speed: (a) the whole path, LocalExchange replaying as fast as it can in a
//    child process -> WebSocket -> forwarder (this process) -> TCP client (child process);
//    (b) the forwarder's own path fed from memory: WebSocket frames (bytes, through ws's own frame
//    parser) -> BinanceSource -> pipeline -> encode -> TCP write. Each with --parse rust (shipped:
//    Encoder.ingest parses and encodes regular frames in one native call) and --parse js (JSON.parse
//    + Trade objects + encodeBatch, the path shipped before); BENCH_PARSE=rust or js for one.
// 2. Added latency at 10k msgs/s: WebSocket message received -> frame written to the TCP socket
//    and -> published to the /dev/shm ring, per trade, p50/p99/p99.9; a CDF in docs/latency-e2e.svg.
//    Also -> the TCP consumer has it (its own receive stamp of the frame), for a sleeping Node
//    reader and/or the Rust example busy-polling its socket (BENCH_TCP_CLIENT=node|busy-poll|both).
// 3. JSON.parse in JS + encodeBatch vs Encoder.encodeJsonLines (Rust parse + encode, one call).
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const { spawn } = require('node:child_process');
const { Receiver } = require('ws');
const { Encoder, BinanceSource } = require('../dist/index.js');
const { Pipeline } = require('../dist/pipeline.js');
const { Stats } = require('../dist/observe/stats.js');
const { parseFrame } = require('../dist/source/parse.js');
const { FrameReader } = require('../dist/source/rfc6455.js');
const { startForwarder } = require('../dist/cli/forward.js');
const { SymbolWalk, seededRandom } = require('../dist/exchange/generator.js');
const { DEFAULT_SYMBOLS } = require('../dist/exchange/symbols.js');

const { root, fixture } = require('./fixture');
const SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'];
const LAT_RATE = Number(process.env.BENCH_RATE || 10000);
/** Parse modes compared in [1] and [2]: the shipped fast path first (BENCH_PARSE=rust,js by default). */
const PARSE_MODES = (process.env.BENCH_PARSE || 'rust,js').split(',');
/** Exchange pacing in [2] (BENCH_TIMING=exact or timer for one; see `exchange --replay-timing`). */
const TIMINGS = (process.env.BENCH_TIMING || 'exact,timer').split(',');
/** Sections to run (BENCH_PART=1a,2 for some; default all: 3,1b,1a,2). */
const PARTS = new Set((process.env.BENCH_PART || '3,1b,1a,2').split(','));
/**
 * TCP consumers compared in [2] (BENCH_TCP_CLIENT: node, busy-poll, busy-poll-yield, a comma list,
 * both = busy-poll,node, or all = the three): a Node process reading on 'data' (sleeps in epoll),
 * the Rust example busy-polling its socket, or busy-polling with sched_yield between empty reads.
 */
const TCP_CLIENTS = (process.env.BENCH_TCP_CLIENT || 'both').replace('both', 'busy-poll,node').replace('all', 'busy-poll,busy-poll-yield,node').split(',');
const CONSUMER_NAME = {
  node: "a Node process reading on 'data' (sleeps in epoll)",
  'busy-poll': 'the Rust example busy-polling (tcp_consumer --busy-poll)',
  'busy-poll-yield': 'the Rust example busy-polling, sched_yield between empty reads (--busy-poll-yield)',
};
for (const c of TCP_CLIENTS) if (!CONSUMER_NAME[c]) throw new Error(`BENCH_TCP_CLIENT=${c}: give ${Object.keys(CONSUMER_NAME).join(', ')}, a comma list of them, or both`);
const RUST_KINDS = TCP_CLIENTS.filter((c) => c !== 'node');
const RUST_CLIENT = path.join(root, 'target', 'release', 'examples', 'tcp_consumer');
const svgOut = process.env.BENCH_SVG || path.join(root, 'docs', 'latency-e2e.svg');

const optional = (p) => {
  try {
    return require(p);
  } catch {
    return null;
  }
};
const tcpMod = optional('../dist/transports/tcp.js');
const shmMod = optional('../dist/transports/shm.js');

const q = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const us = (ns) => (ns / 1000).toFixed(1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const cpuNs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) * 1000;
};
/** Monotonic ns as a number, the clock of `Handoff.recvMonoNs` / `sentMonoNs`. */
const monoNs = () => Number(process.hrtime.bigint());

// ---------------------------------------------------------------- the stream
/** Fixture frames plus the same number of ETH and SOL frames each, interleaved (combined-stream JSON). */
function buildStream() {
  const btc = zlib
    .gunzipSync(fs.readFileSync(fixture))
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(l.indexOf(' ') + 1));
  const rnd = seededRandom(7);
  const walks = ['ETHUSDT', 'SOLUSDT'].map((s) => new SymbolWalk(DEFAULT_SYMBOLS.find((d) => d.symbol === s), rnd, 3_000_000_000));
  const frames = [];
  const t0 = 1723161256322;
  for (let i = 0; i < btc.length; i++) {
    frames.push(btc[i]);
    for (const w of walks) {
      const p = w.next(t0 + Math.floor(i / 10));
      frames.push(JSON.stringify({ stream: `${p.s.toLowerCase()}@trade`, data: p }));
    }
  }
  return frames;
}

/** Replay file, evenly paced at `rate` frames/s (the exchange's speed 0 ignores the pacing). */
function writeReplay(frames, rate) {
  const file = path.join(os.tmpdir(), `perp-signal-e2e-${process.pid}-${rate}.txt`);
  const step = BigInt(Math.round(1e9 / rate));
  let ns = 1723161255000000000n;
  const out = [];
  for (const f of frames) {
    out.push(`${ns} ${f}`);
    ns += step;
  }
  tmpFiles.add(file);
  fs.writeFileSync(file, out.join('\n') + '\n');
  return file;
}

// ---------------------------------------------------------------- processes and transports
const children = new Set();
/**
 * BENCH_PIN=1: the forwarder (this process) runs alone on CPU 1, the exchange and the client on
 * CPU 0, as a latency-sensitive deployment would pin it; otherwise the scheduler decides.
 */
const PIN = process.env.BENCH_PIN === '1';
/**
 * Pinned, every consumer runs on CPU 0 with the exchange, so the forwarder has CPU 1 to itself. The
 * exchange sleeps between frames (--replay-timing exact uses Atomics.wait, no busy wait), so a
 * busy-polling consumer there gets the CPU back at once. (Before it did, a poller on CPU 0 and the
 * exchange waited out each other's scheduler slices: consumer p50 2-3.5 ms.) BENCH_CLIENT_CPU
 * puts every consumer on the CPU given, e.g. 1 to share the forwarder's.
 */
const clientCpu = () => process.env.BENCH_CLIENT_CPU ?? '0';
function spawnPinned(cpu, cmd, args, opts = {}) {
  const c = PIN ? spawn('taskset', ['-c', cpu, cmd, ...args], { stdio: ['ignore', 'pipe', 'inherit'], ...opts }) : spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], ...opts });
  children.add(c);
  c.on('exit', () => children.delete(c));
  return c;
}
function child(args, opts = {}) {
  return spawnPinned('0', process.execPath, args, opts);
}
/** Where each process of [2] runs, for the report. */
const placement = () =>
  PIN
    ? `pinned: forwarder CPU 1, exchange CPU 0, TCP consumers and write-floor readers: ${TCP_CLIENTS.map((k) => `${k} CPU ${clientCpu(k)}`).join(', ')}`
    : 'not pinned (the scheduler places every process)';
/** The Rust consumer example, built if missing (cargo build --release --example tcp_consumer). */
function ensureRustClient() {
  const r = require('node:child_process').spawnSync('cargo', ['build', '--release', '-q', '-p', 'perp-signal-core', '--example', 'tcp_consumer'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0 || !fs.existsSync(RUST_CLIENT)) throw new Error('cargo build --release --example tcp_consumer failed');
}
const RING = `perp-signal-bench-${process.pid}`;
const tmpFiles = new Set();
function killAll() {
  for (const c of children) c.kill('SIGKILL');
  for (const f of tmpFiles) fs.rmSync(f, { force: true });
  // The publisher removes its file on close; this covers a run that died before closing it.
  fs.rmSync(path.join('/dev/shm', RING), { force: true });
}
process.on('exit', killAll);

/**
 * KVM guests idling with cpuidle-haltpoll: guest_halt_poll_ns is how long an idle vCPU polls
 * before it halts. 0 (as this VM boots) makes every wake-up of a process on an idle vCPU an IPI
 * the waker pays for (~7 µs of a loopback write to a sleeping reader here). BENCH_HALT_POLL_NS=N
 * sets it for this run (root) and puts the old value back at exit.
 */
const HALT_POLL = '/sys/module/haltpoll/parameters/guest_halt_poll_ns';
function haltPoll() {
  try {
    return fs.readFileSync(HALT_POLL, 'utf8').trim();
  } catch {
    return null;
  }
}
if (process.env.BENCH_HALT_POLL_NS !== undefined && haltPoll() !== null) {
  const before = haltPoll();
  fs.writeFileSync(HALT_POLL, process.env.BENCH_HALT_POLL_NS);
  process.on('exit', () => fs.writeFileSync(HALT_POLL, before));
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
}

/** Local exchange in its own process; resolves its ws/rest URLs. */
async function startExchange(replay, speed, timing = 'timer') {
  const c = child([path.join(root, 'bin', 'perp-signal.js'), 'exchange', '--replay', replay, '--speed', String(speed), '--replay-timing', timing]);
  let out = '';
  c.stdout.on('data', (d) => (out += d));
  for (let i = 0; i < 200; i++) {
    const ws = /ws:\s+(\S+)/.exec(out);
    const rest = /rest:\s+(\S+)/.exec(out);
    if (ws && rest) return { proc: c, wsUrl: ws[1], restUrl: rest[1], out: () => out };
    await sleep(50);
  }
  throw new Error(`exchange did not start: ${out}`);
}

/**
 * A TCP client in its own process that drains the feed (connecting again every 5 ms until the
 * server is up); reports its byte count when the feed ends or on SIGTERM. With `stampsFile`, it
 * also notes for each frame after the header when the 'data' event that completed it fired
 * (process.hrtime, the forwarder's clock) and writes `<frame index> <ns> <1 if a trade>` lines
 * there at the end, as the Rust example's --stamps does.
 */
async function startClient(port, stampsFile, cpu = '0') {
  const stamping = stampsFile
    ? `const t=process.hrtime.bigint();buf=buf.length?Buffer.concat([buf,d]):d;let o=0;` +
      `while(buf.length-o>=4){const l=buf.readUInt32LE(o);if(buf.length-o-4<l)break;` +
      `if(skip>0)skip--;else st.push(idx+++' '+t+' '+(buf[o+4]>=128?1:0));o+=4+l}buf=buf.subarray(o);`
    : '';
  const src =
    `const net=require('net'),fs=require('fs');let n=0,buf=Buffer.alloc(0),skip=2,idx=0;const st=[];` +
    `const done=()=>{${stampsFile ? `fs.writeFileSync(${JSON.stringify(stampsFile)},st.join('\\n')+'\\n');` : ''}process.stdout.write(String(n)+'\\n');process.exit(0)};` +
    `process.on('SIGTERM',done);` +
    `const go=()=>{const s=net.connect(${port},'127.0.0.1');let up=false;s.on('connect',()=>{up=true;s.setNoDelay(true)});` +
    `s.on('data',d=>{n+=d.length;${stamping}});s.on('error',()=>{});s.on('close',()=>{if(up)done();else setTimeout(go,5)})};go();`;
  return clientHandle(spawnPinned(cpu, process.execPath, ['-e', src]), stampsFile);
}

/**
 * The Rust example busy-polling its socket (crates/perp-signal-core/examples/tcp_consumer.rs
 * --busy-poll --stamps FILE). It connects once: start it after the server listens.
 */
function startRustClient(port, stampsFile, cpu, kind) {
  return clientHandle(spawnPinned(cpu, RUST_CLIENT, ['--addr', `127.0.0.1:${port}`, `--${kind}`, '--stamps', stampsFile]), stampsFile);
}

function clientHandle(c, stampsFile) {
  let out = '';
  c.stdout.on('data', (d) => (out += d));
  const exited = new Promise((r) => c.on('exit', r));
  if (stampsFile) tmpFiles.add(stampsFile);
  return {
    /**
     * Call after the server side closed: the client reads to the end of the feed and exits.
     * Resolves its byte count (Node client) and its receive stamps by frame index (NaN: none).
     */
    async stop() {
      await Promise.race([exited, sleep(5000)]);
      if (c.exitCode === null) c.kill('SIGTERM');
      await exited;
      let stamps = new Float64Array(0);
      if (stampsFile && fs.existsSync(stampsFile)) {
        const rows = fs.readFileSync(stampsFile, 'utf8').trim().split('\n').filter(Boolean);
        stamps = new Float64Array(rows.length).fill(NaN);
        for (const r of rows) {
          const [i, ns] = r.split(' ');
          if (Number(i) < stamps.length) stamps[Number(i)] = Number(ns);
        }
      }
      return { bytes: Number(out.trim()), stamps };
    },
  };
}

/** Frames in a framed batch (u32 LE length + payload each). */
function countFrames(b) {
  let n = 0;
  for (let o = 0; o + 4 <= b.length; o += 4 + b.readUInt32LE(o)) n += 1;
  return n;
}

/** A port free on 127.0.0.1 right now. */
function freePort() {
  const srv = net.createServer();
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => {
    const { port } = srv.address();
    srv.close(() => resolve(port));
  }));
}

/** Minimal TCP fan-out, used only while ts/transports/tcp.ts is not built in this tree. */
function plainTcp(port) {
  const clients = new Set();
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    clients.add(s);
    s.on('close', () => clients.delete(s));
    s.on('error', () => {});
  });
  return {
    name: 'tcp(plain)',
    async listen() {
      await new Promise((r) => server.listen(port, '127.0.0.1', r));
      return { port: server.address().port };
    },
    publish(b) {
      for (const s of clients) s.write(b);
    },
    consumers: () => clients.size,
    drops: () => 0,
    close: () => new Promise((r) => {
      for (const s of clients) s.end();
      server.close(() => r());
    }),
  };
}

async function makeTcp(encoder, port = 0) {
  if (tcpMod) {
    const t = new tcpMod.TcpFanout({ host: '127.0.0.1', port, encoder, heartbeatMs: 0, maxQueuedBytes: 1 << 30, ...(process.env.BENCH_COALESCE_US ? { maxCoalesceUs: Number(process.env.BENCH_COALESCE_US) } : {}) });
    return { t, port: (await t.listen()).port };
  }
  const t = plainTcp(port);
  return { t, port: (await t.listen()).port };
}

function makeRing(encoder) {
  if (!shmMod) return null;
  return shmMod.ShmPublisher.create({ name: RING, capacity: 1 << 24, headerSource: () => shmMod.headerCopyOf(encoder) });
}

/**
 * Both transports, noting when each publish returned (per batch). The ring goes first (BENCH_ORDER
 * =tcp,ring for the other order): its publish is ~1 µs and a TCP write ~5-15 µs, so the ring's
 * figure then shows the path to the ring alone, as in `perp-signal shm`, which has no TCP at all.
 */
function tee(tcp, ring) {
  // frames: written to TCP so far; batchStart: index of the first frame of the latest publish,
  // i.e. of the trades of the hand-off that follows it (a client connected before the first
  // publish numbers its frames the same way).
  const at = { tcp: 0, ring: 0, frames: 0, batchStart: 0 };
  const ringFirst = (process.env.BENCH_ORDER || 'ring,tcp').startsWith('ring');
  const toRing = (b) => {
    if (ring) {
      ring.publish(b);
      at.ring = monoNs();
    }
  };
  return {
    at,
    tcp,
    name: 'tee',
    publish(b) {
      at.batchStart = at.frames;
      at.frames += countFrames(b);
      if (ringFirst) toRing(b);
      tcp.publish(b);
      at.tcp = monoNs();
      if (!ringFirst) toRing(b);
    },
    consumers: () => tcp.consumers() + (ring ? ring.consumers() : 0),
    drops: () => tcp.drops() + (ring ? ring.drops() : 0),
    close: async () => {
      await tcp.close();
      if (ring) await ring.close();
    },
  };
}

// ---------------------------------------------------------------- 1a: whole path over WebSocket
/**
 * `consumer`: 'drain' (Node client counting bytes, [1a]), 'node' (the same with receive stamps)
 * or 'busy-poll' / 'busy-poll-yield' (the Rust example). Resolves onStats' result plus the client's byte count and
 * receive stamps by frame index.
 */
async function forwarderRun(replay, speed, total, parse, onStats, timing, consumer = 'drain') {
  const ex = await startExchange(replay, speed, timing);
  // The Node client is already trying to connect when the transport comes up, so the forwarder's
  // start-up (while the exchange already streams) stays short; the Rust one connects once, so it
  // starts once the transport listens.
  const port = await freePort();
  const stampsFile = consumer === 'drain' ? undefined : path.join(os.tmpdir(), `perp-signal-e2e-${process.pid}-stamps.txt`);
  if (stampsFile) fs.rmSync(stampsFile, { force: true });
  let client = RUST_KINDS.includes(consumer) ? undefined : await startClient(port, stampsFile, consumer === 'drain' ? '0' : clientCpu(consumer));
  let sink;
  const fwd = await startForwarder(
    {
      assets: SYMBOLS,
      'ws-url': ex.wsUrl,
      'rest-url': ex.restUrl,
      'stats-interval': 0,
      'heartbeat-ms': 0,
      'log-level': 'error',
      parse,
    },
    async (encoder) => {
      const { t } = await makeTcp(encoder, port);
      sink = tee(t, makeRing(encoder));
      if (!client) client = startRustClient(port, stampsFile, clientCpu(consumer), consumer);
      // The client must be connected before the first frame goes out, or it misses frames.
      for (let i = 0; i < 1000 && t.consumers() === 0; i++) await sleep(2);
      return sink;
    },
  );
  const res = await onStats(fwd, sink, total);
  await fwd.stop();
  const { bytes, stamps } = await client.stop();
  ex.proc.kill('SIGTERM');
  return { ...res, clientBytes: bytes, stamps, framesWritten: sink.at.frames };
}

async function throughputOverWs(replay, total, parse) {
  return forwarderRun(replay, 0, total, parse, async (fwd) => {
    let n = 0;
    let firstRecv = 0;
    let lastOut = 0;
    const c0 = cpuNs();
    fwd.pipeline.on('handoff', (h) => {
      if (n === 0) firstRecv = h.recvMonoNs[0];
      lastOut = h.sentMonoNs;
      n += h.count;
    });
    // Done when every frame is through, or nothing has moved for 1 s (trades held during start-up
    // for the reference prices are handed off before this hook is in place).
    let last = -1;
    for (let i = 0; i < 1200 && n < total; i++) {
      await sleep(50);
      if (i % 20 === 19) {
        if (n === last) break;
        last = n;
      }
    }
    const cpu = cpuNs() - c0;
    const wall = lastOut - firstRecv;
    return { n, handedOff: fwd.stats.snapshot().trades, wallNs: wall, cpuNs: cpu, gaps: fwd.source.stats().gaps, fast: fwd.pipeline.fastTrades };
  });
}

// ---------------------------------------------------------------- 2: latency at LAT_RATE
async function latencyOverWs(replay, total, parse, timing, consumer) {
  const r = await forwarderRun(replay, 1, total, parse, async (fwd, sink) => {
    const tcp = new Float64Array(total);
    const ring = new Float64Array(total);
    const wait = new Float64Array(total);
    const encode = new Float64Array(total);
    const batchSize = new Float64Array(total);
    let n = 0;
    // Where the time goes: receive -> start of the batch's encode (parse of this and the other
    // frames of the same socket read, source bookkeeping), then encode + writes.
    let encStart = 0;
    let encEnd = 0;
    let batchLen = 0;
    const enc = fwd.encoder;
    const encodeBatch = enc.encodeBatch.bind(enc);
    enc.encodeBatch = (trades) => {
      encStart = monoNs();
      batchLen = trades.length;
      const out = encodeBatch(trades);
      encEnd = monoNs();
      return out;
    };
    const ingest = enc.ingest.bind(enc);
    enc.ingest = (frames, from, state) => {
      encStart = monoNs();
      const out = ingest(frames, from, state);
      batchLen = out.consumed;
      encEnd = monoNs();
      return out;
    };
    // TcpFanout writes a turn's frames to its clients at the end of the turn (or at once without
    // flush()): a trade's TCP time is when the write that carries it returns.
    const recvOf = new Float64Array(total);
    // Index of the frame carrying each trade in the client's stream (frames after its header).
    const frameOf = new Float64Array(total);
    let unwritten = 0;
    const fanout = sink.tcp;
    if (typeof fanout.flush === 'function') {
      const flush = fanout.flush.bind(fanout);
      fanout.flush = () => {
        flush();
        const now = monoNs();
        for (; unwritten < n; unwritten++) tcp[unwritten] = now - recvOf[unwritten];
      };
    }
    fwd.pipeline.on('handoff', (h) => {
      for (let i = 0; i < h.count && n < total; i++) {
        const recv = h.recvMonoNs[i];
        recvOf[n] = recv;
        frameOf[n] = sink.at.batchStart + i;
        wait[n] = encStart - recv;
        encode[n] = encEnd - encStart;
        batchSize[n] = batchLen;
        tcp[n] = sink.at.tcp - recv;
        ring[n] = sink.at.ring ? sink.at.ring - recv : NaN;
        n += 1;
      }
      // Nothing left queued (no coalescing, or a flush inside publish): written when publish returned.
      if (typeof fanout.flush !== 'function' || fanout.turnBytes === 0) unwritten = n;
    });
    const deadline = Date.now() + (total / LAT_RATE) * 1000 + 30000;
    while ((n < total || unwritten < n) && Date.now() < deadline) await sleep(100);
    n = Math.min(n, unwritten);
    // The first second is warm-up (JIT, connection set-up): left out.
    const skip = Math.min(n >> 2, LAT_RATE);
    return {
      n,
      tcp: Array.from(tcp.subarray(skip, n)).sort((a, b) => a - b),
      ring: Array.from(ring.subarray(skip, n)).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b),
      wait: Array.from(wait.subarray(skip, n)).sort((a, b) => a - b),
      encode: Array.from(encode.subarray(skip, n)).sort((a, b) => a - b),
      write: Array.from(tcp.subarray(skip, n), (x, i) => x - wait[skip + i] - encode[skip + i]).sort((a, b) => a - b),
      batch: Array.from(batchSize.subarray(skip, n)).sort((a, b) => a - b),
      recvOf: recvOf.subarray(skip, n),
      frameOf: frameOf.subarray(skip, n),
    };
  }, timing, consumer);
  // The consumer's receive stamp of the frame carrying each trade, minus the forwarder's.
  const consumerLat = [];
  let unmatched = 0;
  for (let i = 0; i < r.recvOf.length; i++) {
    const at = r.stamps[r.frameOf[i]];
    if (at === undefined || Number.isNaN(at)) unmatched += 1;
    else consumerLat.push(at - r.recvOf[i]);
  }
  consumerLat.sort((a, b) => a - b);
  return { ...r, consumer: consumerLat, unmatched };
}

// ---------------------------------------------------------------- 2: the floor of a TCP write
/**
 * What one loopback write costs the writer on this machine, with nothing of ours in the way: a
 * 40-byte frame written with socket.write every 1e6/rate µs (busy-waited) to a minimal reader
 * process placed as the bench's TCP client is, timing each write call. The kernel delivers the
 * bytes and wakes the reader inside that call, so it is part of any "written to a TCP client" time.
 */
async function tcpWriteFloor(count, rate, readerKind = 'node') {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise((r) => server.once('connection', r));
  const port = server.address().port;
  // 'node': a Node process sleeping in epoll until 'data'; 'busy-poll' / 'busy-poll-yield': the
  // Rust example's --drain mode reading its non-blocking socket in a loop (no wake-up needed).
  const src = `const s=require('net').connect(${port},'127.0.0.1');s.on('data',()=>{});s.on('error',()=>{});s.on('close',()=>process.exit(0));`;
  const reader =
    readerKind !== 'node'
      ? spawnPinned(clientCpu(readerKind), RUST_CLIENT, ['--addr', `127.0.0.1:${port}`, '--drain', `--${readerKind}`])
      : spawnPinned(clientCpu('node'), process.execPath, ['-e', src]);
  const sock = await accepted;
  sock.setNoDelay(true);
  const buf = Buffer.alloc(40, 7);
  const gap = BigInt(Math.round(1e9 / rate));
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) {
    // Yield to the event loop now and then, as the forwarder does between messages.
    if (i % 64 === 0) await new Promise((r) => setImmediate(r));
    const until = process.hrtime.bigint() + gap;
    while (process.hrtime.bigint() < until);
    const t0 = monoNs();
    sock.write(buf);
    out[i] = monoNs() - t0;
  }
  sock.destroy();
  server.close();
  await new Promise((r) => reader.on('exit', r));
  return Array.from(out.subarray(count >> 3)).sort((a, b) => a - b);
}

// ---------------------------------------------------------------- 1b: forwarder path from memory
/** Server-to-client WebSocket text frames (unmasked), cut into 64 KiB reads as TCP would. */
function wsReads(frames) {
  const parts = [];
  for (const f of frames) {
    const body = Buffer.from(f);
    const h = body.length < 126 ? Buffer.from([0x81, body.length]) : Buffer.from([0x81, 126, body.length >> 8, body.length & 255]);
    parts.push(h, body);
  }
  const all = Buffer.concat(parts);
  const reads = [];
  for (let i = 0; i < all.length; i += 65536) reads.push(all.subarray(i, i + 65536));
  return reads;
}

/** The stream again with every trade id moved up by `shift`, so a later round is new trades, not duplicates. */
function shiftIds(frames, shift) {
  return frames.map((f) => f.replace(/"t":(\d+)/, (_, id) => `"t":${Number(id) + shift}`));
}

function assetsOf(frames) {
  const first = new Map();
  for (const f of frames) {
    const d = JSON.parse(f).data;
    if (!first.has(d.s)) first.set(d.s, d);
  }
  const scale = (s) => (s.includes('.') ? s.length - s.indexOf('.') - 1 : 0);
  return SYMBOLS.map((s) => {
    const spec = DEFAULT_SYMBOLS.find((d) => d.symbol === s);
    return { symbol: s, refPrice: first.get(s).p, refQty: first.get(s).q, priceScale: scale(spec.tickSize), qtyScale: scale(spec.stepSize) };
  });
}

/**
 * The forwarder's own code from the WebSocket frame reader on: the reader (`reader` 'builtin':
 * our RFC 6455 FrameReader, as StreamConnection runs it, one receive stamp per socket read; 'ws':
 * `ws`'s Receiver, one stamp per message, as StreamConnection runs it with `--ws-client ws`) ->
 * BinanceSource's frame handler (`onFrame`: the bench plays the socket) -> Pipeline (`parse` 'rust':
 * Encoder.ingest; 'js': JSON.parse + encodeBatch) with the stats attached -> TcpFanout.
 * 'ceiling': each read's frames joined and given to encodeJsonLines, no source bookkeeping at all.
 */
async function fromMemory(frames, roundsReads, mode, reader) {
  const assets = assetsOf(frames);
  const encoder = new Encoder({ wire: 'v2', assets, refTime: 1723161256000 });
  const { t: tcp, port } = await makeTcp(encoder);
  const client = await startClient(port);
  for (let i = 0; i < 100 && tcp.consumers() === 0; i++) await sleep(20);
  const source = new BinanceSource({ symbols: SYMBOLS, wsUrl: 'ws://127.0.0.1:1', restUrl: 'http://127.0.0.1:1' });
  const conn = {};
  const slot = { index: 0, symbols: SYMBOLS, conn, candidate: undefined };
  const stats = new Stats(SYMBOLS);
  const pipeline = new Pipeline({ source, encoder, transports: [tcp], stats, heartbeatMs: 0, parse: mode === 'ceiling' ? 'js' : mode });
  await pipeline.start({ startSource: false });
  let texts = [];
  let n = 0;
  let recv = 0;
  const onText = (buf, start, end, mono) => {
    // Copied: a frame's bytes are only valid during this call (FrameSink.text); the source copies too.
    if (mode === 'ceiling') texts.push(Buffer.from(buf.subarray(start, end)), NL);
    else source.onFrame(slot, conn, buf, start, end, mono);
  };
  let push;
  if (reader === 'ws') {
    // As StreamConnection configures its WebSocket with --ws-client ws.
    const receiver = new Receiver({ isServer: false, maxPayload: 1 << 20, skipUTF8Validation: true });
    receiver.on('message', (data) => onText(data, 0, data.length, Number(process.hrtime.bigint())));
    push = (read) => receiver.write(read);
  } else {
    const fr = new FrameReader(
      { text: (b, s, e) => onText(b, s, e, recv), binary() {}, ping() {}, pong() {}, close() {}, error: (_c, why) => { throw new Error(why); } },
      1 << 20,
    );
    push = (read) => {
      recv = Number(process.hrtime.bigint());
      fr.push(read);
    };
  }
  const c0 = cpuNs();
  const t0 = process.hrtime.bigint();
  for (const reads of roundsReads) {
    for (const read of reads) {
      push(read);
      if (mode === 'ceiling' && texts.length > 0) {
        const batch = encoder.encodeJsonLines(Buffer.concat(texts));
        tcp.publish(batch.framed);
        n += batch.count;
        texts = [];
      }
      // Let the pipeline's microtask flush run, as it does after each socket read.
      await null;
    }
  }
  const wall = Number(process.hrtime.bigint() - t0);
  const cpu = cpuNs() - c0;
  if (mode !== 'ceiling') n = stats.snapshot().trades;
  const fast = pipeline.fastTrades;
  await pipeline.stop();
  const { bytes } = await client.stop();
  return { n, wallNs: wall, cpuNs: cpu, clientBytes: bytes, fast, gaps: source.stats().gaps };
}
const NL = Buffer.from('\n');

// ---------------------------------------------------------------- 3: JS parse vs Rust parse
function parseCompare(frames, rounds, batch) {
  const assets = assetsOf(frames);
  const mk = () => new Encoder({ wire: 'v2', assets, refTime: 1723161256000 });
  const js = mk();
  const rs = mk();
  const rs2 = mk();
  const strBatches = [];
  const bufBatches = [];
  const joined = [];
  for (let i = 0; i < frames.length; i += batch) {
    const b = frames.slice(i, i + batch);
    strBatches.push(b);
    bufBatches.push(b.map((f) => Buffer.from(f)));
    joined.push(Buffer.from(b.join('\n')));
  }
  const time = (fn) => {
    fn(); // warm-up round
    const c0 = cpuNs();
    for (let r = 0; r < rounds; r++) fn();
    return (cpuNs() - c0) / (rounds * frames.length);
  };
  let same = true;
  const jsNs = time(() => {
    for (const b of strBatches) {
      const trades = [];
      for (const f of b) trades.push(parseFrame(f, 0n, 0n).trade);
      js.encodeBatch(trades);
    }
  });
  const rustJoinedNs = time(() => {
    for (const j of joined) rs.encodeJsonLines(j);
  });
  const rustFromWsNs = time(() => {
    for (const b of bufBatches) {
      const parts = [];
      for (const f of b) parts.push(f, NL);
      rs2.encodeJsonLines(Buffer.concat(parts));
    }
  });
  // Same bytes from both paths on a fresh pair of encoders.
  const a = mk();
  const b = mk();
  for (let i = 0; i < strBatches.length; i++) {
    const x = a.encodeBatch(strBatches[i].map((f) => parseFrame(f, 0n, 0n).trade));
    const y = b.encodeJsonLines(joined[i]).framed;
    if (!x.equals(y)) same = false;
  }
  return { jsNs, rustJoinedNs, rustFromWsNs, same };
}

// ---------------------------------------------------------------- SVG
function svgCdf(series, title) {
  const W = 720;
  const H = 420;
  const L = 70;
  const R = 20;
  const T = 40;
  const B = 50;
  const lo = Math.max(1, Math.min(...series.map((s) => s.sorted[0] / 1000)));
  const hi = Math.max(...series.map((s) => q(s.sorted, 0.9999) / 1000));
  const lx0 = Math.floor(Math.log10(lo));
  const lx1 = Math.ceil(Math.log10(hi));
  const X = (u) => L + ((Math.log10(Math.max(u, 10 ** lx0)) - lx0) / (lx1 - lx0)) * (W - L - R);
  // y: -log10(1-p) so the tail (p99, p99.9) gets room; 0..4 = p0..p99.99
  const Y = (p) => H - B - (Math.min(4, -Math.log10(Math.max(1e-4, 1 - p))) / 4) * (H - T - B);
  const el = [];
  el.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  el.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${title}</text>`);
  for (let e = lx0; e <= lx1; e++) {
    const x = X(10 ** e).toFixed(1);
    el.push(`<line x1="${x}" y1="${T}" x2="${x}" y2="${H - B}" stroke="#ddd"/>`);
    el.push(`<text x="${x}" y="${H - B + 18}" text-anchor="middle" font-size="12">${10 ** e} µs</text>`);
  }
  for (const [p, lab] of [[0, '0'], [0.5, 'p50'], [0.9, 'p90'], [0.99, 'p99'], [0.999, 'p99.9'], [0.9999, 'p99.99']]) {
    const y = Y(p).toFixed(1);
    el.push(`<line x1="${L}" y1="${y}" x2="${W - R}" y2="${y}" stroke="#ddd"/>`);
    el.push(`<text x="${L - 6}" y="${y}" text-anchor="end" font-size="12" dominant-baseline="middle">${lab}</text>`);
  }
  const target = X(20).toFixed(1);
  el.push(`<line x1="${target}" y1="${T}" x2="${target}" y2="${H - B}" stroke="#c00" stroke-dasharray="4 3"/>`);
  el.push(`<text x="${Number(target) + 4}" y="${T + 12}" font-size="11" fill="#c00">target p99 &lt; 20 µs</text>`);
  const colors = ['#1f77b4', '#9467bd', '#2ca02c', '#ff7f0e'];
  series.forEach((s, i) => {
    const n = s.sorted.length;
    const pts = [];
    const K = 400;
    for (let k = 0; k <= K; k++) {
      const p = 1 - 10 ** (-4 * (k / K)); // dense in the tail
      const idx = Math.min(n - 1, Math.floor(p * n));
      pts.push(`${X(s.sorted[idx] / 1000).toFixed(1)},${Y(idx / n).toFixed(1)}`);
    }
    el.push(`<polyline fill="none" stroke="${colors[i]}" stroke-width="2" points="${pts.join(' ')}"/>`);
    el.push(`<text x="${W - R - 260}" y="${H - B - 14 - 16 * i}" font-size="12" fill="${colors[i]}">${s.label}</text>`);
  });
  el.push(`<text x="${W / 2}" y="${H - 10}" text-anchor="middle" font-size="12">added latency (log scale)</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">\n${el.join('\n')}\n</svg>\n`;
}

// ---------------------------------------------------------------- main
const rate = (r) => `${(r.n / (r.wallNs / 1e9)).toFixed(0)} msgs/s wall, ${(r.n / (r.cpuNs / 1e9)).toFixed(0)} msgs per CPU-second`;

if (PIN && process.env.PERP_SIGNAL_BENCH_PINNED !== '1') {
  // Re-run this script on CPU 1 (children go to CPU 0, see child()).
  const r = require('node:child_process').spawnSync('taskset', ['-c', '1', process.execPath, ...process.execArgv, __filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, PERP_SIGNAL_BENCH_PINNED: '1' },
  });
  process.exit(r.status ?? 1);
}

(async () => {
  console.log(`e2e bench: node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  console.log(placement());
  const hp = haltPoll();
  if (hp !== null) console.log(`guest halt polling: ${hp} ns (${HALT_POLL}${process.env.BENCH_HALT_POLL_NS !== undefined ? ', set by BENCH_HALT_POLL_NS for this run' : ''})`);
  console.log(`transports: tcp = ${tcpMod ? 'TcpFanout' : 'plain net.Socket writes (TcpFanout not in this build)'}, ring = ${shmMod ? 'ShmPublisher' : 'not in this build: not measured'}`);
  const frames = buildStream();
  console.log(`stream: ${frames.length} frames (21,313 real BTCUSDT + synthetic ETHUSDT, SOLUSDT), ${(frames.reduce((a, f) => a + f.length, 0) / frames.length).toFixed(0)} bytes/frame`);

  if (PARTS.has('3')) {
    console.log('\n[3] parse + encode, v2, batches of 400 frames (one 64 KiB read), CPU ns per frame');
    const pc = parseCompare(frames, 4, 400);
    console.log(`  JS: parseFrame (JSON.parse) + encodeBatch          ${pc.jsNs.toFixed(0)} ns/frame`);
    console.log(`  Rust: encodeJsonLines on one joined buffer         ${pc.rustJoinedNs.toFixed(0)} ns/frame`);
    console.log(`  Rust: join the ws Buffers, then encodeJsonLines    ${pc.rustFromWsNs.toFixed(0)} ns/frame`);
    console.log(`  same bytes on every batch: ${pc.same}; Rust/JS = ${(pc.rustFromWsNs / pc.jsNs).toFixed(2)}`);
  }

  if (PARTS.has('1b')) {
    const roundsReads = [0, 1, 2].map((r) => wsReads(r === 0 ? frames : shiftIds(frames, r * 100_000_000)));
    console.log(`\n[1b] forwarder path from memory: ${roundsReads[0].length} reads of 64 KiB (frame reader -> source -> pipeline -> encode -> TCP write), 3 rounds (ids shifted each round)`);
    const rows = [];
    for (const mode of PARSE_MODES) rows.push([mode, 'builtin'], [mode, 'ws']);
    rows.push(['ceiling', 'builtin']);
    for (const [mode, reader] of rows) {
      const m = await fromMemory(frames, roundsReads, mode, reader);
      const label = { rust: 'rust (Encoder.ingest)', js: 'js (JSON.parse + encodeBatch)', ceiling: 'ceiling (encodeJsonLines, no source)' }[mode];
      const shipped = mode === 'rust' && reader === 'builtin' ? ', shipped' : '';
      console.log(`  ${`${label}, ${reader} reader${shipped}`.padEnd(52)} ${rate(m)}  (fast path ${m.fast}, gaps ${m.gaps}, client got ${m.clientBytes} bytes)`);
    }
  }

  if (PARTS.has('1a')) {
    const fastFile = writeReplay(frames, 1e6);
    console.log('\n[1a] whole path: LocalExchange (child process, replay speed 0) -> WebSocket -> forwarder -> TCP client (child)');
    for (const parse of PARSE_MODES) {
      const w = await throughputOverWs(fastFile, frames.length, parse);
      console.log(`  --parse ${parse}: ${w.n} trades, first receive .. last hand-off ${(w.wallNs / 1e9).toFixed(3)} s: ${rate(w)}; gaps ${w.gaps}; fast path ${w.fast}; client got ${w.clientBytes} bytes`);
      console.log(`    handed off in all (stats, incl. trades held during start-up): ${w.handedOff} of ${frames.length} sent by the exchange`);
    }
  }
  if (!PARTS.has('2')) return;

  const latN = Math.min(frames.length, LAT_RATE * 6);
  const slowFile = writeReplay(frames.slice(0, latN), LAT_RATE);
  const line = (name, s) =>
    s.length === 0
      ? `  ${name}: not measured`
      : `  ${name}: n=${s.length} p50 ${us(q(s, 0.5))} µs, p99 ${us(q(s, 0.99))} µs, p99.9 ${us(q(s, 0.999))} µs, max ${us(s[s.length - 1])} µs`;
  if (RUST_KINDS.length) ensureRustClient();
  console.log(`\n[2] ${placement()}`);
  console.log(`[2] floor: one 40-byte socket.write to a reader process at ${LAT_RATE} writes/s, nothing else`);
  console.log(line('write call, reader sleeping (Node, epoll)', await tcpWriteFloor(20000, LAT_RATE, 'node')));
  for (const kind of RUST_KINDS) console.log(line(`write call, reader --drain --${kind}`, await tcpWriteFloor(20000, LAT_RATE, kind)));
  // The shipped mode last, so the plot shows it: --parse rust, frames at their recorded times.
  let l;
  const pacing = {
    exact: 'each frame at its recorded time (evenly spaced, as in the replay file)',
    timer: "what is due on each of the exchange's >= 1 ms timer ticks (bursts of ~10)",
  };
  for (const timing of TIMINGS.slice().reverse()) for (const parse of PARSE_MODES.slice().reverse()) for (const consumer of TCP_CLIENTS) {
    console.log(`\n[2] --parse ${parse}, TCP consumer: ${CONSUMER_NAME[consumer]}: added latency at ${LAT_RATE} msgs/s, exchange sends ${pacing[timing]} (--replay-timing ${timing}): ${latN} frames over the WebSocket, first second dropped as warm-up`);
    l = await latencyOverWs(slowFile, latN, parse, timing, consumer);
    console.log(line('received -> written to TCP socket', l.tcp));
    console.log(line('received -> consumer has it      ', l.consumer));
    console.log(line('received -> published to ring    ', l.ring));
    console.log(`  consumer stamps: ${l.stamps.length} frames (forwarder wrote ${l.framesWritten}); trades without a stamp: ${l.unmatched}`);
    console.log('  the TCP figure, split:');
    console.log(line('  of which received -> batch encode starts', l.wait));
    console.log(line('  of which encode (ingest / encodeBatch)  ', l.encode));
    console.log(line('  of which the publishes (ring, then TCP) ', l.write));
    console.log(`  batch size seen by a trade: p50 ${q(l.batch, 0.5)}, p99 ${q(l.batch, 0.99)}, max ${l.batch[l.batch.length - 1]}`);
  }
  const series = [{ label: `→ TCP socket write (p99 ${us(q(l.tcp, 0.99))} µs)`, sorted: l.tcp }];
  if (l.consumer.length) series.push({ label: `→ TCP consumer has it (p99 ${us(q(l.consumer, 0.99))} µs)`, sorted: l.consumer });
  if (l.ring.length) series.push({ label: `→ shm ring publish (p99 ${us(q(l.ring, 0.99))} µs)`, sorted: l.ring });
  series.push({ label: `→ batch encode starts (p99 ${us(q(l.wait, 0.99))} µs)`, sorted: l.wait });
  fs.writeFileSync(svgOut, svgCdf(series, `perp-signal added latency at ${LAT_RATE} msgs/s (WebSocket message → hand-off), CDF`));
  console.log(`  CDF written to ${path.relative(process.cwd(), svgOut)}`);
})()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => {
    killAll();
    // Nothing of the bench is left to wait for: a half-closed server or client must not keep it alive.
    process.exit();
  });

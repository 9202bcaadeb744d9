#!/usr/bin/env node
/**
 * TCP fan-out benchmark: latency from a trade entering the forwarder to a client process having
 * decoded it, p50/p99/p99.9, for 1/10/100 clients at 10k and 100k msgs/s; the floor, a bare
 * loopback hop (a minimal process writing length-prefixed frames to a reader), measured in the same
 * run at the same rates; and the highest rate sustained to 10 clients with none dropped.
 *
 *   npm run bench:tcp                 # everything (about 2 minutes)
 *   npm run bench:tcp -- --quick      # shorter runs, for a smoke test
 *
 * Every process stamps with process.hrtime (CLOCK_MONOTONIC, one clock for the whole machine). The
 * forwarder process makes trades at a fixed rate from a 1 ms timer (as trades from a socket arrive
 * in bursts), stamps each batch as it is made, encodes it and publishes it; clients record the
 * arrival of every S-th trade after decoding; the parent joins both by trade number. The bare hop
 * does the same with raw 16-byte frames and no codec. Uses the built library (dist/).
 */
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');

const DIST = path.join(__dirname, '..', 'dist');
const HERE = __filename;
const { nowNs, assetSpecs, SYMBOLS, makeTrade, paced, lines, send } = require('./feed');

// ---------------------------------------------------------------- roles (child processes)

/** The forwarder: codec + TcpFanout. Waits for `go`, sends, reports, waits for `exit`. */
async function roleServer(rate, total, stampsFile) {
  const { Encoder } = require(path.join(DIST, 'codec'));
  const { TcpFanout } = require(path.join(DIST, 'transports', 'tcp'));
  const encoder = new Encoder({ wire: 'v2', assets: assetSpecs() });
  const fanout = new TcpFanout({ host: '127.0.0.1', port: 0, heartbeatMs: 0, encoder });
  const { port } = await fanout.listen();
  send({ port });
  const state = SYMBOLS.map((s) => ({ ...s }));
  lines(process.stdin, async (l) => {
    if (l === 'go') {
      const cpu0 = process.cpuUsage();
      const { stamps, seconds } = await paced(rate, total, (from, to, now) => {
        const mono = BigInt(now);
        const batch = new Array(to - from);
        for (let k = from; k < to; k++) batch[k - from] = makeTrade(k, state, mono);
        fanout.publish(encoder.encodeBatch(batch));
      });
      const cpu = process.cpuUsage(cpu0);
      fs.writeFileSync(stampsFile, Buffer.from(stamps.buffer));
      send({ done: true, seconds, stats: fanout.stats(), cpuUs: cpu.user + cpu.system });
    } else if (l === 'clients') {
      send({ clients: fanout.stats().clients });
    } else if (l === 'exit') {
      await fanout.close();
      process.exit(0);
    }
  });
}

/** Clients: `conns` TcpClients in this process; records arrival of every `sample`-th trade. */
function roleClient(port, conns, total, sample, outFile) {
  const { connect } = require(path.join(DIST, 'clients', 'tcp'));
  const perConn = Math.ceil(total / sample);
  const arrivals = new Float64Array(conns * perConn);
  let finished = 0;
  let wrong = 0;
  let dropped = 0;
  let cpu0;
  const finish = () => {
    const cpu = process.cpuUsage(cpu0);
    fs.writeFileSync(outFile, Buffer.from(arrivals.buffer));
    send({ done: true, wrong, dropped, cpuUs: cpu.user + cpu.system });
    process.exit(0);
  };
  for (let c = 0; c < conns; c++) {
    const client = connect({ host: '127.0.0.1', port, reconnect: false, highWaterMark: 1 << 20 });
    const base = c * perConn;
    let k = 0;
    const ids = SYMBOLS.map((s) => s.id);
    (async () => {
      for await (const batch of client.batches()) {
        const t = nowNs();
        cpu0 ??= process.cpuUsage();
        for (const m of batch) {
          if (m.kind === 'trade') {
            if (k % sample === 0) arrivals[base + k / sample] = t;
            if (m.tradeId !== ids[m.asset]++) wrong++;
            k++;
          } else if (m.kind === 'disconnected') {
            dropped++;
          }
        }
        if (k >= total) break;
      }
      client.close();
      if (++finished === conns) finish();
    })();
  }
  send({ ready: true });
}

/** The floor's writer: raw 16-byte frames (u32 length, trade number, 8 bytes of padding), no codec. */
async function roleFloorWriter(rate, total, stampsFile) {
  const sockets = [];
  const server = net.createServer({ noDelay: true }, (s) => {
    s.setNoDelay(true);
    s.on('error', () => undefined);
    sockets.push(s);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  send({ port: server.address().port });
  lines(process.stdin, async (l) => {
    if (l === 'go') {
      const cpu0 = process.cpuUsage();
      const { stamps, seconds } = await paced(rate, total, (from, to) => {
        const buf = Buffer.allocUnsafe((to - from) * 16);
        for (let k = from, o = 0; k < to; k++, o += 16) {
          buf.writeUInt32LE(12, o);
          buf.writeUInt32LE(k, o + 4);
          buf.writeDoubleLE(0, o + 8);
        }
        for (const s of sockets) s.write(buf);
      });
      const cpu = process.cpuUsage(cpu0);
      fs.writeFileSync(stampsFile, Buffer.from(stamps.buffer));
      send({ done: true, seconds, stats: { clients: sockets.length, disconnectedSlow: 0 }, cpuUs: cpu.user + cpu.system });
    } else if (l === 'clients') {
      send({ clients: sockets.length });
    } else if (l === 'exit') {
      for (const s of sockets) s.destroy();
      server.close();
      process.exit(0);
    }
  });
}

/** The floor's reader: splits frames and records arrivals like the clients do. */
function roleFloorReader(port, conns, total, sample, outFile) {
  const perConn = Math.ceil(total / sample);
  const arrivals = new Float64Array(conns * perConn);
  let finished = 0;
  let cpu0;
  for (let c = 0; c < conns; c++) {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
    const base = c * perConn;
    let pending = Buffer.alloc(0);
    let k = 0;
    s.on('data', (chunk) => {
      const t = nowNs();
      cpu0 ??= process.cpuUsage();
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      let o = 0;
      while (pending.length - o >= 4) {
        const len = pending.readUInt32LE(o);
        if (pending.length - o - 4 < len) break;
        const n = pending.readUInt32LE(o + 4);
        if (n % sample === 0) arrivals[base + n / sample] = t;
        k = n + 1;
        o += 4 + len;
      }
      pending = pending.subarray(o);
      if (k >= total) {
        s.destroy();
        if (++finished === conns) {
          const cpu = process.cpuUsage(cpu0);
          fs.writeFileSync(outFile, Buffer.from(arrivals.buffer));
          send({ done: true, wrong: 0, dropped: 0, cpuUs: cpu.user + cpu.system });
          process.exit(0);
        }
      }
    });
  }
  send({ ready: true });
}

// ---------------------------------------------------------------- orchestration

function child(args) {
  // BENCH_CPU_PROF=<dir>: V8 CPU profiles of every child, to see where the time goes.
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const proc = spawn(process.execPath, [...prof, HERE, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const inbox = [];
  const waiters = [];
  lines(proc.stdout, (l) => {
    const msg = JSON.parse(l);
    const w = waiters.findIndex((x) => x.pred(msg));
    if (w >= 0) waiters.splice(w, 1)[0].resolve(msg);
    else inbox.push(msg);
  });
  const next = (pred, timeoutMs = 120000) => {
    const i = inbox.findIndex(pred);
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bench child ${args[0]}: no answer in ${timeoutMs} ms`)), timeoutMs);
      waiters.push({ pred, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  };
  return { proc, next, tell: (l) => proc.stdin.write(l + '\n') };
}

function quantiles(lat) {
  const sorted = Float64Array.from(lat).sort();
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
  return { n: sorted.length, p50: q(0.5), p99: q(0.99), p999: q(0.999), max: sorted[sorted.length - 1] };
}

/**
 * One run: a writer (forwarder or floor) and `clients` connections spread over up to 10 processes.
 * Returns latency quantiles in µs (after a warm-up of 10% of the trades), plus loss figures.
 */
async function run({ floor, rate, clients, seconds }) {
  const total = Math.max(1000, Math.round(rate * seconds));
  const sample = Math.max(1, Math.floor((total * clients) / 2_000_000));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'perp-bench-tcp-'));
  const stampsFile = path.join(tmp, 'stamps');
  const writer = child([floor ? 'floor-writer' : 'server', String(rate), String(total), stampsFile]);
  const procs = [writer.proc];
  try {
    const { port } = await writer.next((m) => 'port' in m);
    const nproc = Math.min(clients, 10);
    const readers = [];
    for (let i = 0; i < nproc; i++) {
      const conns = Math.floor(clients / nproc) + (i < clients % nproc ? 1 : 0);
      const out = path.join(tmp, `arrivals-${i}`);
      const r = child([floor ? 'floor-reader' : 'client', String(port), String(conns), String(total), String(sample), out]);
      procs.push(r.proc);
      readers.push({ ...r, out, conns });
    }
    await Promise.all(readers.map((r) => r.next((m) => m.ready)));
    for (let i = 0; i < 200; i++) {
      writer.tell('clients');
      const { clients: n } = await writer.next((m) => 'clients' in m);
      if (n === clients) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    writer.tell('go');
    const done = await writer.next((m) => m.done);
    const results = await Promise.all(
      readers.map((r) =>
        r.next((m) => m.done, Math.max(30000, seconds * 20000)).catch(() => ({ done: false, timedOut: true })),
      ),
    );
    const stamps = new Float64Array(fs.readFileSync(stampsFile).buffer.slice(0));
    const lat = [];
    const warm = Math.floor(total / 10);
    let missing = 0;
    for (const r of readers) {
      if (!fs.existsSync(r.out)) {
        missing += r.conns;
        continue;
      }
      const arr = new Float64Array(fs.readFileSync(r.out).buffer.slice(0));
      const perConn = Math.ceil(total / sample);
      for (let c = 0; c < r.conns; c++) {
        for (let j = 0; j < perConn; j++) {
          const k = j * sample;
          if (k < warm) continue;
          const t = arr[c * perConn + j];
          if (t > 0) lat.push((t - stamps[k]) / 1000);
        }
      }
    }
    writer.tell('exit');
    const q = quantiles(lat);
    return {
      floor,
      rate,
      clients,
      achievedRate: Math.round(total / done.seconds),
      disconnectedSlow: done.stats.disconnectedSlow,
      incomplete: missing + results.filter((r) => !r.done).length,
      clientDrops: results.reduce((s, r) => s + (r.dropped || 0), 0),
      // CPU time per message: robust to other load on the machine, unlike wall-clock latency.
      serverCpuUsPerMsg: done.cpuUs === undefined ? undefined : done.cpuUs / total,
      clientCpuUsPerMsg: results.reduce((s, r) => s + (r.cpuUs || 0), 0) / (total * clients),
      wrongIds: results.reduce((s, r) => s + (r.wrong || 0), 0),
      ...q,
    };
  } finally {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

async function main() {
  const quick = process.argv.includes('--quick');
  const seconds = Number(argValue('--seconds') ?? (quick ? 1 : 3));
  const rows = [];
  const print = (r, floorP99) => {
    const who = r.floor ? 'bare hop' : 'perp-signal';
    const ratio = floorP99 ? ` (${(r.p99 / floorP99).toFixed(2)}x floor p99)` : '';
    console.log(
      `${who.padEnd(11)} ${String(r.clients).padStart(3)} clients ${String(r.rate).padStart(7)} msg/s` +
        ` (achieved ${r.achievedRate}): p50 ${fmt(r.p50)} p99 ${fmt(r.p99)} p99.9 ${fmt(r.p999)} max ${fmt(r.max)} µs${ratio}` +
        (r.serverCpuUsPerMsg !== undefined ? ` cpu/msg: server ${r.serverCpuUsPerMsg.toFixed(2)} µs, client ${r.clientCpuUsPerMsg.toFixed(2)} µs;` : '') +
        ` n=${r.n} dropped=${r.disconnectedSlow} clientDrops=${r.clientDrops} incomplete=${r.incomplete} wrongIds=${r.wrongIds}`,
    );
    rows.push(r);
  };
  const one = argValue('--run'); // e.g. --run 10x100000 (clients x rate), or floor x rate: --run 0x100000
  if (one) {
    const [clients, rate] = one.split('x').map(Number);
    const f = await run({ floor: true, rate, clients: 1, seconds });
    print(f);
    if (clients > 0) print(await run({ floor: false, rate, clients, seconds }), f.p99);
    return;
  }
  console.log(
    `# bench:tcp on ${os.cpus().length} cores (${os.cpus()[0].model}), node ${process.version}, ${seconds} s per run, ` +
      `load average at start ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`,
  );
  const reps = Number(argValue('--repeat') ?? (quick ? 1 : 3));
  const table = [
    '| clients | rate msg/s | p50 µs | p99 µs | p99.9 µs | p99 / bare hop (1 reader) | p99 / bare hop (same readers) | cpu µs/msg writer, client |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const med = (xs) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)];
  const cpu = (q) => `${q('serverCpuUsPerMsg').toFixed(2)}, ${q('clientCpuUsPerMsg').toFixed(2)}`;
  for (const rate of [10000, 100000]) {
    // Runs alternate between the floor and ours, so both see the same background load. The floor
    // as defined is one reader; a floor with 10 readers (10 processes) shows what the machine
    // itself does to 10 consumers.
    const floors = new Map([1, 10].map((c) => [c, []]));
    const ours = new Map([1, 10, 100].map((c) => [c, []]));
    for (let rep = 0; rep < reps; rep++) {
      for (const [clients, fs1] of floors) {
        const f = await run({ floor: true, rate, clients, seconds });
        print(f, clients === 1 ? undefined : floors.get(1)[rep].p99);
        fs1.push(f);
      }
      for (const [clients, rs] of ours) {
        const r = await run({ floor: false, rate, clients, seconds });
        print(r, floors.get(1)[rep].p99);
        rs.push(r);
      }
    }
    const f1 = (k) => med(floors.get(1).map((f) => f[k]));
    for (const [clients, fl] of floors) {
      const q = (k) => med(fl.map((f) => f[k]));
      table.push(
        `| bare hop x${clients} | ${rate} | ${fmt(q('p50'))} | ${fmt(q('p99'))} | ${fmt(q('p999'))} |` +
          ` ${(q('p99') / f1('p99')).toFixed(2)}x | 1 | ${cpu(q)} |`,
      );
    }
    for (const [clients, rs] of ours) {
      const q = (k) => med(rs.map((r) => r[k]));
      const same = floors.get(clients);
      const vsSame = same ? `${(q('p99') / med(same.map((f) => f.p99))).toFixed(2)}x` : '';
      const lossy = rs.some((r) => r.disconnectedSlow || r.clientDrops || r.incomplete || r.wrongIds);
      const behind = rs.some((r) => r.achievedRate < 0.95 * rate) ? ` (sent ${q('achievedRate')}/s)` : '';
      table.push(
        `| ${clients} | ${rate}${behind} | ${fmt(q('p50'))} | ${fmt(q('p99'))} | ${fmt(q('p999'))} |` +
          ` ${(q('p99') / f1('p99')).toFixed(2)}x | ${vsSame} | ${cpu(q)}${lossy ? ' LOSS' : ''} |`,
      );
    }
  }
  console.log(`# medians of ${reps} run(s) each`);
  console.log(table.join('\n'));
  console.log('# highest rate to 10 clients with none dropped (all received, no slow disconnect, p99 < 100 ms)');
  let best = 0;
  for (const rate of quick ? [200000, 500000] : [200000, 300000, 400000, 500000, 700000, 1000000]) {
    const r = await run({ floor: false, rate, clients: 10, seconds: Math.min(seconds, 2) });
    print(r);
    const ok = r.disconnectedSlow === 0 && r.clientDrops === 0 && r.incomplete === 0 && r.wrongIds === 0 && r.p99 < 100000 && r.achievedRate >= 0.95 * rate;
    if (!ok) break;
    best = rate;
  }
  console.log(`max sustained rate to 10 clients: ${best ? `${best} msg/s` : `below the lowest rate tried`}`);
  if (process.env.BENCH_JSON) fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify(rows, null, 2));
}

const [role, ...a] = process.argv.slice(2);
const n = (i) => Number(a[i]);
if (role === 'server') roleServer(n(0), n(1), a[2]);
else if (role === 'client') roleClient(n(0), n(1), n(2), n(3), a[4]);
else if (role === 'floor-writer') roleFloorWriter(n(0), n(1), a[2]);
else if (role === 'floor-reader') roleFloorReader(n(0), n(1), n(2), n(3), a[4]);
else
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });

/** `perp-signal exchange` and `perp-signal record` as real child processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { LocalExchange } from '../ts/exchange';
import { Harness, repoRoot, waitFor } from './source.helpers';

const bin = path.join(repoRoot, 'bin', 'perp-signal.js');
const children: ChildProcess[] = [];
const files: string[] = [];
const h = new Harness();

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const f of files.splice(0)) fs.rmSync(f, { force: true });
  await h.cleanup();
});

function tmpFile(name: string): string {
  const f = path.join('/dev/shm', `perp-signal-test-${process.pid}-${Date.now()}-${name}`);
  files.push(f);
  return f;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 15_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env } });
    children.push(c);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => {
      c.kill('SIGKILL');
      reject(new Error(`perp-signal ${args.join(' ')} did not finish in ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    c.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts `perp-signal exchange ...` and returns it with its URLs once it prints them. */
async function startExchange(args: string[]): Promise<{ child: ChildProcess; wsUrl: string; restUrl: string; out: () => string }> {
  const child = spawn(process.execPath, [bin, 'exchange', '--port', '0', ...args]);
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  await waitFor(() => /rest: http:\/\/127\.0\.0\.1:\d+/.test(out) || child.exitCode !== null, 10_000, 'the exchange to listen');
  const ws = /--ws-url (\S+)/.exec(out);
  const rest = /--rest-url (\S+)/.exec(out);
  if (!ws || !rest) throw new Error(`exchange did not start: ${out}`);
  return { child, wsUrl: ws[1], restUrl: rest[1], out: () => out };
}

function readCapture(file: string): { ns: bigint; frame: { stream: string; data: { s: string; t: number; p: string; q: string } } }[] {
  let buf = fs.readFileSync(file);
  if (file.endsWith('.gz')) buf = zlib.gunzipSync(buf);
  return buf
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /^(\d{19}) (\{.*\})$/.exec(line);
      if (!m) throw new Error(`not in the fixture format: ${line}`);
      return { ns: BigInt(m[1]), frame: JSON.parse(m[2]) };
    });
}

describe('perp-signal exchange + record', () => {
  it('records gzip fixture-format frames from the exchange, and the exchange replays them exactly', async () => {
    const ex = await startExchange(['--symbols', 'BTCUSDT,1000SATSUSDT', '--rate', '200', '--seed', '3']);
    expect(ex.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/public$/);
    const out = tmpFile('rec.txt.gz');
    const r = await run(['record', '--assets', 'btc,1000sats', '--out', out, '--count', '300', '--ws-url', ex.wsUrl, '--rest-url', ex.restUrl]);
    expect(r.stderr).toContain('recorded 300 trades');
    expect(r.code).toBe(0);
    const lines = readCapture(out);
    expect(lines).toHaveLength(300);
    for (const sym of ['BTCUSDT', '1000SATSUSDT']) {
      const ids = lines.filter((l) => l.frame.data.s === sym).map((l) => l.frame.data.t);
      expect(ids.length).toBeGreaterThan(20);
      for (let i = 1; i < ids.length; i++) expect(ids[i]).toBe(ids[i - 1] + 1);
    }
    for (let i = 1; i < lines.length; i++) expect(lines[i].ns).toBeGreaterThanOrEqual(lines[i - 1].ns);
    expect(lines.find((l) => l.frame.stream === '1000satsusdt@trade')?.frame.data.p).toMatch(/^0\.\d{7}$/);
    ex.child.kill('SIGTERM');
    await waitFor(() => ex.child.exitCode !== null, 5000, 'the exchange to stop on SIGTERM');
    expect(ex.child.exitCode).toBe(0);

    // The fixed pace from the command line: a source receives consecutive trades at the rate.
    const fixed = await startExchange(['--symbols', 'BTCUSDT', '--rate', '2000', '--pace', 'fixed']);
    const live = h.source({ wsUrl: fixed.wsUrl, restUrl: fixed.restUrl, port: 0 }, { symbols: ['BTCUSDT'] });
    await live.source.start();
    await waitFor(() => live.trades.length >= 400, 10_000, 'fixed-pace trades');
    const ids = live.trades.map((t) => t.tradeId);
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBe(ids[i - 1] + 1);
    await live.source.stop();
    fixed.child.kill('SIGTERM');

    // Replay the capture through a second exchange and compare what a source receives.
    const replay = await startExchange(['--replay', out, '--speed', '0']);
    const rec = h.source({ wsUrl: replay.wsUrl, restUrl: replay.restUrl, port: 0 }, { symbols: ['BTCUSDT', '1000SATSUSDT'] });
    await rec.source.start();
    await waitFor(() => rec.trades.length === 300, 10_000, 'the replayed trades');
    expect(rec.trades.map((t) => [t.symbol, t.tradeId, t.price, t.qty])).toEqual(
      lines.map((l) => [l.frame.data.s, l.frame.data.t, l.frame.data.p, l.frame.data.q]),
    );
    await waitFor(() => replay.out().includes('replay finished'), 5000, 'replay end');
  });

  it('takes endpoints from the environment and writes plain text without .gz', async () => {
    const { addr } = await h.exchange({ symbols: ['ETHUSDT'], rate: 200 });
    const out = tmpFile('rec.txt');
    const r = await run(['record', '--assets', 'ETHUSDT', '--out', out, '--count', '10'], {
      PERP_SIGNAL_WS_URL: addr.wsUrl,
      PERP_SIGNAL_REST_URL: addr.restUrl,
    });
    expect(r.code).toBe(0);
    const lines = readCapture(out);
    expect(lines).toHaveLength(10);
    expect(lines[0].frame.stream).toBe('ethusdt@trade');
  });

  it('fails clearly on an unknown symbol and on bad arguments', async () => {
    const { addr } = await h.exchange({ rate: 0 });
    const out = tmpFile('never.txt');
    const bad = await run(['record', '--assets', 'nope', '--out', out, '--ws-url', addr.wsUrl, '--rest-url', addr.restUrl]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown symbol NOPEUSDT/);
    expect(fs.existsSync(out)).toBe(false);
    const port = await run(['exchange', '--port', '99999']);
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/--port must be 0\.\.65535/);
    const tick = await run(['exchange', '--pace', 'fixed', '--tick-ms', '0']);
    expect(tick.code).toBe(2);
    expect(tick.stderr).toMatch(/--tick-ms must be >= 1/);
    const pace = await run(['exchange', '--pace', 'steady']);
    expect(pace.code).toBe(2);
    expect(pace.stderr).toMatch(/pace/);
    const missing = await run(['exchange', '--replay', '/dev/shm/perp-signal-no-such-file.gz']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/replay file .* does not exist/);
    const noOut = await run(['record', '--assets', 'btc']);
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toMatch(/out/);
    const badOut = await run(['record', '--assets', 'btc', '--out', '/nonexistent-dir/x.txt', '--ws-url', addr.wsUrl, '--rest-url', addr.restUrl]);
    expect(badOut.code).toBe(2);
    expect(badOut.stderr).toMatch(/cannot write --out \/nonexistent-dir\/x\.txt: ENOENT/);
    expect(badOut.stderr).not.toMatch(/\n\s+at /);
  });

  it('takes --assets repeated as well as comma lists, folding duplicates; a failing write exits 1', async () => {
    const { addr } = await h.exchange({ symbols: ['BTCUSDT', 'ETHUSDT'], rate: 200 });
    const out = tmpFile('rep.txt');
    const r = await run(['record', '--assets', 'btc', '--assets', 'ETHUSDT,btcusdt', '--out', out, '--count', '40',
      '--ws-url', addr.wsUrl, '--rest-url', addr.restUrl]);
    expect(r.code).toBe(0);
    const streams = new Set(readCapture(out).map((l) => l.frame.stream));
    expect(streams).toEqual(new Set(['btcusdt@trade', 'ethusdt@trade']));
    // A write that fails once recording runs (a full disk) is a runtime failure: exit 1, no crash.
    const full = await run(['record', '--assets', 'btc', '--out', '/dev/full', '--count', '1000', '--ws-url', addr.wsUrl, '--rest-url', addr.restUrl]);
    expect(full.code).toBe(1);
    expect(full.stderr).toMatch(/cannot write \/dev\/full: ENOSPC/);
    expect(full.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('replay pace', () => {
  it('keeps the recorded spacing, scaled by speed', async () => {
    // Five frames recorded 1 s apart, replayed at speed 4: frame i is due 250 ms x i after the
    // replay starts. Timed on the exchange's own clock (its 'trade' event, emitted as it sends)
    // from the moment it accepts the client, which is before the replay starts: load can delay a
    // frame but never make it early, so the lower bounds hold on any box, and a replay only 20 %
    // fast (frame 4 at 833 ms) fails them. The upper bound leaves 1.5 s for load and still fails
    // a replay that ignores the speed (frame 4 at 4 s).
    const file = tmpFile('pace.txt');
    const t0 = 1723161255000000000n;
    const recordedMs = [0, 1000, 2000, 3000, 4000];
    const speed = 4;
    const lines = recordedMs.map((ms, i) => {
      const data = { e: 'trade', E: 1, T: 1, s: 'BTCUSDT', t: 10 + i, p: '61800.30', q: '0.006', X: 'MARKET', m: false };
      return `${t0 + BigInt(ms) * 1_000_000n} ${JSON.stringify({ stream: 'btcusdt@trade', data })}`;
    });
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const ex = new LocalExchange({ replay: file, speed });
    h.exchanges.push(ex);
    const addr = await ex.start();
    let accepted = 0n;
    const sentAt: bigint[] = [];
    ex.once('connection', () => (accepted = process.hrtime.bigint()));
    ex.on('trade', () => sentAt.push(process.hrtime.bigint()));
    const rec = h.source(addr);
    await rec.source.start();
    await waitFor(() => rec.trades.length === recordedMs.length, 10_000, 'five trades');
    expect(rec.ids()).toEqual([10, 11, 12, 13, 14]);
    expect(accepted).toBeGreaterThan(0n);
    const sentMs = sentAt.map((t) => Number(t - accepted) / 1e6);
    expect(sentMs).toHaveLength(recordedMs.length);
    sentMs.forEach((ms, i) => expect({ frame: i, lateEnough: ms >= recordedMs[i] / speed }).toEqual({ frame: i, lateEnough: true }));
    expect(sentMs[sentMs.length - 1]).toBeLessThan(recordedMs[recordedMs.length - 1] / speed + 1500);
  });

  it('replays sub-millisecond spacing in order and never faster than recorded, with either timing', async () => {
    const file = tmpFile('exact.txt');
    const t0 = 1723161255000000000n;
    const lines = Array.from({ length: 60 }, (_, i) => {
      const data = { e: 'trade', E: 1, T: 1, s: 'BTCUSDT', t: 10 + i, p: '61800.30', q: '0.006', X: 'MARKET', m: false };
      return `${t0 + BigInt(i) * 300_000n} ${JSON.stringify({ stream: 'btcusdt@trade', data })}`;
    });
    fs.writeFileSync(file, lines.join('\n') + '\n');
    for (const replayTiming of ['exact', 'timer'] as const) {
      const ex = new LocalExchange({ replay: file, replayTiming });
      h.exchanges.push(ex);
      const addr = await ex.start();
      // The replay starts after the exchange accepts its first client: the last frame, recorded
      // 59 x 300 µs = 17.7 ms after the first, cannot arrive sooner after that unless the exchange
      // sends faster than recorded. (Load can only make it later.)
      let accepted = 0n;
      ex.once('connection', () => (accepted = process.hrtime.bigint()));
      const rec = h.source(addr);
      await rec.source.start();
      await waitFor(() => rec.trades.length === 60, 5000, 'sixty trades');
      expect(rec.ids()).toEqual(lines.map((_, i) => 10 + i));
      expect(accepted).toBeGreaterThan(0n);
      expect(Number(rec.trades[59].recvMonoNs - accepted) / 1e6).toBeGreaterThanOrEqual(17.7);
    }
    // How far apart the frames then arrive (one by one, or ~3 per 1 ms tick) is a matter of load:
    // bench/e2e.js [2] prints the batch sizes the forwarder saw with each timing.
  });
});

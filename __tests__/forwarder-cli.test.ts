/**
 * The forwarder as users run it: `perp-signal --assets ... tcp|shm` as a child process against the
 * local exchange, read by `perp-signal tcp-client` / the library; exit codes for bad input.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { LocalExchange } from '../ts/exchange';
import { freePort, killChildren, runCli, spawnCli, waitForOutput } from './support/cli';

afterEach(killChildren);

let ex: LocalExchange;
let endpoints: string[];
beforeAll(async () => {
  ex = new LocalExchange({ rate: 100, seed: 7 });
  const a = await ex.start();
  endpoints = ['--ws-url', a.wsUrl, '--rest-url', a.restUrl];
});
afterAll(() => ex.stop());

/** Whether a connection to `port` on 127.0.0.1 is refused (nothing listens there any more). */
function refused(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

describe('perp-signal <tcp|shm> forwarder', () => {
  it('forwards live trades to a tcp-client that prints exact JSON lines, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const fwd = spawnCli(['--assets', 'btcusdt,ETHUSDT', '--assets', 'BTCUSDT', 'tcp', '--host', '127.0.0.1', '--port', String(port), '--stats-interval', '1', ...endpoints]);
    await waitForOutput(fwd, /forwarding/);
    const client = await runCli(['tcp-client', '--port', String(port), '--json', '--count', '50']);
    expect(client.code).toBe(0);
    const trades = client.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((o) => !('event' in o));
    expect(trades).toHaveLength(50);
    for (const t of trades) {
      expect(['BTCUSDT', 'ETHUSDT']).toContain(t.symbol);
      expect(t.price).toMatch(/^\d+\.\d{2}$/);
      expect(typeof t.tradeId).toBe('number');
    }
    // Trade ids of each symbol are consecutive: nothing was lost between exchange and client.
    for (const sym of ['BTCUSDT', 'ETHUSDT']) {
      const ids = trades.filter((t) => t.symbol === sym).map((t) => t.tradeId as number);
      ids.forEach((id, i) => i > 0 && expect(id).toBe(ids[i - 1] + 1));
    }
    await waitForOutput(fwd, /stats BTCUSDT=[\d.]+\/s ETHUSDT=[\d.]+\/s consumers=\d/);
    fwd.child.kill('SIGTERM');
    const r = await fwd.exited;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/stopped/);
  });

  it('in v1, which has no gap frame, ends client connections at a gap so no loss goes unnoticed', async () => {
    const port = await freePort();
    const fwd = spawnCli(['--assets', 'BTCUSDT', '--wire', 'v1', 'tcp', '--host', '127.0.0.1', '--port', String(port), ...endpoints]);
    await waitForOutput(fwd, /forwarding/);
    const client = spawnCli(['tcp-client', '--port', String(port), '--json']);
    await waitForOutput(client, /"symbol":"BTCUSDT"/);
    ex.skipIds('BTCUSDT', 3);
    await waitForOutput(client, /"event":"disconnected"[^\n]*\n(.*\n)*\{"event":"connected"/);
    await waitForOutput(fwd, /wire v1 cannot say so: disconnecting every client/);
    // After the reconnect it decodes again: more trades arrive after the second "connected".
    const after = (): string => client.stdout().split('"event":"connected"').slice(2).join('');
    const until = Date.now() + 5000;
    while (!/"symbol":"BTCUSDT"/.test(after()) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(after()).toMatch(/"symbol":"BTCUSDT"/);
    client.child.kill('SIGTERM');
    fwd.child.kill('SIGTERM');
    expect((await fwd.exited).code).toBe(0);
  });

  it('in v1 over the ring, a gap becomes a ring loss the consumer reports before it resyncs', async () => {
    const name = `ps-v1gap-${process.pid}`;
    const fwd = spawnCli(['--assets', 'BTCUSDT', '--wire', 'v1', 'shm', '--name', name, '--capacity', '65536', ...endpoints]);
    await waitForOutput(fwd, /forwarding/);
    const consumer = spawnCli(['shm-consumer', '--name', name, '--json']);
    await waitForOutput(consumer, /"symbol":"BTCUSDT"/);
    ex.skipIds('BTCUSDT', 3);
    await waitForOutput(consumer, /"event":"lost"[^\n]*\n(.*\n)*\{"symbol":"BTCUSDT"/);
    consumer.child.kill('SIGTERM');
    fwd.child.kill('SIGTERM');
    expect((await fwd.exited).code).toBe(0);
    expect(fs.existsSync(`/dev/shm/${name}`)).toBe(false);
  });

  it('serves Prometheus metrics and writes JSON log lines when asked', async () => {
    const metricsPort = await freePort();
    const fwd = spawnCli(['--assets', 'BTCUSDT', 'shm', '--name', `ps-metrics-${process.pid}`, '--capacity', '65536',
      '--metrics-port', String(metricsPort), '--log-format', 'json', '--stats-interval', '1', ...endpoints]);
    await waitForOutput(fwd, /"msg":"stats /);
    const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(body).toMatch(/perp_signal_trades_total\{symbol="BTCUSDT"\} [1-9]/);
    expect(body).toMatch(/perp_signal_receive_to_handoff_seconds_bucket/);
    expect(body).toMatch(/perp_signal_consumers 0/);
    // Totals are Prometheus counters (rate() works on them), the consumer count a gauge.
    for (const c of ['trades', 'drops', 'reconnects', 'gaps']) expect(body).toContain(`# TYPE perp_signal_${c}_total counter`);
    expect(body).toContain('# TYPE perp_signal_exchange_to_handoff_seconds histogram');
    for (const line of fwd.stderr().trim().split('\n')) {
      const o = JSON.parse(line) as { level: string; msg: string };
      expect(['debug', 'info', 'warn', 'error']).toContain(o.level);
    }
    const stats = fwd.stderr().split('\n').map((l) => (l ? (JSON.parse(l) as { stats?: { perSymbol: object } }) : {})).find((o) => o.stats);
    expect(stats?.stats?.perSymbol).toHaveProperty('BTCUSDT');
    expect(stats?.stats).toEqual(expect.objectContaining({ consumers: 0, drops: 0, reconnects: 0, gaps: 0 }));
    expect(stats?.stats).toHaveProperty('exchangeToHandoffMs.p99');
    expect(stats?.stats).toHaveProperty('receiveToHandoffUs.p50');
    fwd.child.kill('SIGINT');
    expect((await fwd.exited).code).toBe(0);
    expect(fs.existsSync(`/dev/shm/ps-metrics-${process.pid}`)).toBe(false);
  });

  it('exits 2 with a clear message for a busy port, an unknown symbol and too many v1 assets', async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const r = await runCli(['--assets', 'BTCUSDT', 'tcp', '--host', '127.0.0.1', '--port', String(port), ...endpoints]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`${port}`));
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace without --log-level debug
    } finally {
      busy.close();
    }
    const unknown = await runCli(['--assets', 'BTCUSDT,NOPEUSDT', 'tcp', '--port', '0', ...endpoints]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/NOPEUSDT/);
    const many = Array.from({ length: 128 }, (_, i) => `S${i}USDT`).join(',');
    const tooMany = await runCli(['--assets', many, '--wire', 'v1', 'tcp', '--port', '0', ...endpoints]);
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toMatch(/127/);
    const probes = await runCli(['--assets', 'BTCUSDT', 'tcp', '--port', '0', '--keepalive-probes', '0', ...endpoints]);
    expect(probes.code).toBe(2);
    expect(probes.stderr).toMatch(/--keepalive-probes must be a positive integer, got 0/);
    const none = await runCli(['tcp', '--port', '0', ...endpoints]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--assets/);
  });

  it('exits 2 for a busy --metrics-port or a --ws-url that is not a WebSocket URL', async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '0.0.0.0', () => r()));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const r = await runCli(['--assets', 'BTCUSDT', 'tcp', '--host', '127.0.0.1', '--port', '0', '--metrics-port', String(port), ...endpoints]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`cannot serve metrics on 0\\.0\\.0\\.0:${port}: the port is already in use; choose another --metrics-port`));
    } finally {
      busy.close();
    }
    const url = await runCli(['--assets', 'BTCUSDT', 'tcp', '--port', '0', '--ws-url', 'fstream.binance.com', '--rest-url', endpoints[3]]);
    expect(url.code).toBe(2);
    expect(url.stderr).toMatch(/"fstream\.binance\.com" is not a ws: or wss: URL/);
  });

  it('exits 1 (a runtime failure) when the exchange cannot be reached, naming the URL and what to check', async () => {
    const port = await freePort(); // nothing listens there
    const r = await runCli(['--assets', 'BTCUSDT', 'tcp', '--port', '0', '--ws-url', `ws://127.0.0.1:${port}/public`, '--rest-url', `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    const last = r.stderr.trim().split('\n').pop() ?? '';
    expect(last).toMatch(new RegExp(`^perp-signal: cannot read exchangeInfo from http://127\\.0\\.0\\.1:${port}.*check --rest-url`));
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('with --stats-interval 0 writes no stats line', async () => {
    const port = await freePort();
    const fwd = spawnCli(['--assets', 'BTCUSDT', 'tcp', '--host', '127.0.0.1', '--port', String(port), '--stats-interval', '0', ...endpoints]);
    await waitForOutput(fwd, /forwarding/);
    // Trades flow (100/s) for longer than the smallest interval the option takes.
    await runCli(['tcp-client', '--port', String(port), '--count', '100']);
    fwd.child.kill('SIGINT');
    const r = await fwd.exited;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/stopped trades=[1-9]/);
    expect(r.stderr).not.toMatch(/stats /);
  });

  it('refuses in v1 a symbol that needs more than 5 decimals, naming it and suggesting v2', async () => {
    const r = await runCli(['--assets', '1000SATSUSDT', '--wire', 'v1', 'tcp', '--port', '0', ...endpoints]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/1000SATSUSDT/);
    expect(r.stderr).toMatch(/v2/);
  });

  it('exits 2 for a bad queue name or capacity before touching /dev/shm', async () => {
    const cap = await runCli(['--assets', 'BTCUSDT', 'shm', '--name', `ps-test-${process.pid}`, '--capacity', '1000', ...endpoints]);
    expect(cap.code).toBe(2);
    expect(cap.stderr).toMatch(/power of two/);
    expect(fs.existsSync(`/dev/shm/ps-test-${process.pid}`)).toBe(false);
    const name = await runCli(['--assets', 'BTCUSDT', 'shm', '--name', '../etc', ...endpoints]);
    expect(name.code).toBe(2);
    // A file of someone else's under the name: left as it is, and the user told to choose another.
    const foreign = `/dev/shm/ps-foreign-${process.pid}`;
    fs.writeFileSync(foreign, 'not a ring');
    try {
      const r = await runCli(['--assets', 'BTCUSDT', 'shm', '--name', `ps-foreign-${process.pid}`, ...endpoints]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/is not a perp-signal queue.*choose another name/);
      expect(fs.readFileSync(foreign, 'utf8')).toBe('not a ring');
    } finally {
      fs.rmSync(foreign, { force: true });
    }
  });

  it('demo runs exchange, forwarder and client in one go and leaves nothing behind', async () => {
    const r = await runCli(['demo', '--duration', '2.5', '--rate', '20', '--json', '--stats-interval', '1']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const trades = lines.filter((l) => !('event' in l));
    expect(trades.length).toBeGreaterThan(20);
    expect(new Set(trades.map((t) => t.symbol))).toEqual(new Set(['BTCUSDT', 'ETHUSDT', 'SOLUSDT', '1000SATSUSDT']));
    expect(r.stderr).toMatch(/stats /);
    expect(r.stderr).toMatch(/stopped/);
    // A clean first run: reference prices come from the simulated exchange's past trades, and
    // nothing is logged twice.
    expect(r.stderr).not.toMatch(/WARN|ERROR/);
    // Everything ran in that one process (which has exited), on loopback, with no /dev/shm file:
    // the exchange's port is closed again.
    const port = Number(/ws=ws:\/\/127\.0\.0\.1:(\d+)/.exec(r.stderr)?.[1]);
    expect(port).toBeGreaterThan(0);
    expect(await refused(port)).toBe(true);
  });

  it('demo --wire v1 runs on the default symbols v1 can carry', async () => {
    const r = await runCli(['demo', '--wire', 'v1', '--duration', '1', '--rate', '20', '--json', '--stats-interval', '0']);
    expect(r.code).toBe(0);
    const first = JSON.parse(r.stdout.split('\n')[0]) as { event: string; wire: string; symbols: string[] };
    expect(first).toEqual(expect.objectContaining({ event: 'connected', wire: 'v1', symbols: ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'] }));
  });

  it('demo stops on Ctrl-C (SIGINT) with exit 0, its ports closed', async () => {
    const demo = spawnCli(['demo', '--rate', '20', '--stats-interval', '0']);
    await waitForOutput(demo, /^\S+ (BTCUSDT|ETHUSDT|SOLUSDT|1000SATSUSDT) (BUY|SELL) /m);
    demo.child.kill('SIGINT');
    const r = await demo.exited;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/stopping: client, forwarder, exchange[\s\S]*stopped trades=[1-9]/);
    const ports = [/ws=ws:\/\/127\.0\.0\.1:(\d+)/, /tcp fan-out listening host=127\.0\.0\.1 port=(\d+)/].map((re) => Number(re.exec(r.stderr)?.[1]));
    for (const port of ports) {
      expect(port).toBeGreaterThan(0);
      expect(await refused(port)).toBe(true);
    }
  });
});

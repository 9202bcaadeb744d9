/** The CLI as users meet it: a real child process, its output and its exit codes. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LocalExchange } from '../ts/exchange';
import { killChildren, runCli, spawnCli, waitForOutput, type RunResult } from './support/cli';
import { waitFor } from './source.helpers';

afterEach(killChildren);

/** A capture (`<ns> <frame>` lines) in /dev/shm; the caller removes it. */
function writeCapture(name: string, trades: { s: string; t: number }[]): string {
  const file = path.join('/dev/shm', `perp-signal-test-${process.pid}-${name}`);
  const t0 = 1723161255000000000n;
  const lines = trades.map(({ s, t }, i) => {
    const data = { e: 'trade', E: 1, T: 1, s, t, p: '61800.30', q: '0.006', X: 'MARKET', m: false };
    return `${t0 + BigInt(i)} ${JSON.stringify({ stream: `${s.toLowerCase()}@trade`, data })}`;
  });
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

describe('perp-signal CLI', () => {
  it('prints its version and exits 0', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('rejects an unknown flag or command with exit 2 and says what to do', async () => {
    const flag = await runCli(['format-demo', '--bogus-flag']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/Unknown argument.*bogus-flag/);
    expect(flag.stderr).toMatch(/--help/);
    const none = await runCli([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/Name a command/);
  });

  it('format-demo encodes and decodes exactly in v2 and v1', async () => {
    for (const wire of ['v2', 'v1']) {
      const r = await runCli(['format-demo', '--wire', wire, '--count', '20000']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`wire ${wire}: header of \\d+ bytes`));
      expect(r.stdout).toMatch(/20000 trades: [\d.]+ bytes\/trade .* 0 decoded wrong/);
    }
  });

  it('watch prints one JSON line per live trade from the exchange', async () => {
    const ex = new LocalExchange({ rate: 200 });
    const { wsUrl, restUrl } = await ex.start();
    try {
      const r = await runCli(['watch', '--assets', 'btcusdt,ETHUSDT', '--json', '--duration', '1.5', '--ws-url', wsUrl, '--rest-url', restUrl]);
      expect(r.code).toBe(0);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.length).toBeGreaterThan(20);
      for (const l of lines) {
        expect(['BTCUSDT', 'ETHUSDT']).toContain(l.symbol);
        expect(typeof l.price).toBe('string');
        expect(typeof l.tradeId).toBe('number');
      }
      const bad = await runCli(['watch', '--assets', 'NOPEUSDT', '--ws-url', wsUrl, '--rest-url', restUrl]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/NOPEUSDT/);
    } finally {
      await ex.stop();
    }
  });

  it('watch --count-interval prints, per interval, how many trades of each symbol it printed', async () => {
    // 7 BTCUSDT and 3 ETHUSDT trades, replayed at once when watch connects.
    const trades = [
      ...[100, 101, 102, 103, 104, 105, 106].map((t) => ({ s: 'BTCUSDT', t })),
      ...[200, 201, 202].map((t) => ({ s: 'ETHUSDT', t })),
    ];
    const file = writeCapture('watch-counts.txt', trades);
    const ex = new LocalExchange({ replay: file, speed: 0 });
    try {
      const { wsUrl, restUrl } = await ex.start();
      const w = spawnCli(['watch', '--assets', 'BTCUSDT,ETHUSDT', '--json', '--count-interval', '0.3', '--ws-url', wsUrl, '--rest-url', restUrl]);
      const countLines = (): RegExpExecArray[] => [...w.stderr().matchAll(/trades in the last 0\.3 s: BTCUSDT=(\d+) ETHUSDT=(\d+)/g)];
      await waitForOutput(w, /"tradeId":202\b/);
      // Two more count lines after the last trade was printed: the first may still be counting the
      // interval that held it, the second began after it. No sleeps: load only makes this slower.
      const seen = countLines().length;
      await waitFor(() => countLines().length >= seen + 2 || w.child.exitCode !== null, 15_000, 'two more count lines');
      w.child.kill('SIGTERM');
      const r = await w.exited;
      expect(r.code).toBe(0);
      const printed = r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { symbol: string }).symbol);
      expect(printed.filter((s) => s === 'BTCUSDT')).toHaveLength(7);
      expect(printed.filter((s) => s === 'ETHUSDT')).toHaveLength(3);
      const lines = countLines();
      expect(lines.length).toBeGreaterThanOrEqual(2);
      // Each interval is counted once: the lines add up to exactly what was printed.
      const sum = (k: 1 | 2): number => lines.reduce((n, m) => n + Number(m[k]), 0);
      expect({ BTCUSDT: sum(1), ETHUSDT: sum(2) }).toEqual({ BTCUSDT: 7, ETHUSDT: 3 });
      // And counts restart: the last interval, begun after every trade, counted none.
      expect(lines[lines.length - 1].slice(1)).toEqual(['0', '0']);
    } finally {
      await ex.stop();
      fs.rmSync(file, { force: true });
    }
  });

  it('lists every option with its default in --help', async () => {
    const r = await runCli(['format-demo', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--count[^\n]*\[default: 100000\]/);
    expect(r.stdout).toMatch(/--log-level[\s\S]*?\[default: "info"\]/);
  });

  it("every command's --help gives, for every option, its default or that it is required", async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    // The commands as `perp-signal --help` lists them, so a new command is checked too.
    const commands = [...top.stdout.matchAll(/^ {2}perp-signal ([a-z-]+)/gm)].map((m) => m[1]);
    expect(commands).toEqual(expect.arrayContaining(['tcp', 'shm', 'demo', 'tcp-client', 'shm-consumer', 'shm-producer',
      'exchange', 'record', 'watch', 'format-demo']));
    const helps = await Promise.all(commands.map((c) => runCli([c, '--help'])));
    const undocumented: string[] = [];
    helps.forEach((h, i) => {
      expect(h.code).toBe(0);
      // One block per option: its `--flag` line and the wrapped lines under it.
      const blocks = h.stdout.split(/\n(?= {2}--)/).filter((b) => /^ {2}--/.test(b));
      expect(blocks.length).toBeGreaterThan(4);
      for (const b of blocks) {
        const flag = /^ {2}(--[a-z-]+)/.exec(b)?.[1] ?? b;
        if (flag === '--help' || flag === '--version') continue;
        if (!/default|required/.test(b)) undocumented.push(`${commands[i]} ${flag}`);
      }
    });
    expect(undocumented).toEqual([]);
  });

  it('with --log-format json every stderr line is a JSON object, the final error included', async () => {
    const ex = new LocalExchange({ rate: 50 });
    const { wsUrl, restUrl } = await ex.start();
    try {
      const runs = await Promise.all([
        runCli(['record', '--assets', 'btc', '--out', '/dev/null', '--count', '3', '--log-format', 'json', '--ws-url', wsUrl, '--rest-url', restUrl]),
        runCli(['--log-format=json', '--assets', 'NOPEUSDT', 'tcp', '--port', '0', '--ws-url', wsUrl, '--rest-url', restUrl]),
        runCli(['--log-format', 'json', 'no-such-command']),
      ]);
      expect(runs.map((r) => r.code)).toEqual([0, 2, 2]);
      const lines = runs.flatMap((r) => r.stderr.trim().split('\n'));
      const parsed = lines.map((l) => JSON.parse(l) as { level: string; msg: string; code?: string });
      expect(parsed.find((o) => /recorded 3 trades/.test(o.msg))?.level).toBe('info');
      expect(parsed).toContainEqual(expect.objectContaining({ level: 'error', code: 'E_UNKNOWN_SYMBOL', msg: expect.stringMatching(/NOPEUSDT/) }));
      expect(parsed).toContainEqual(expect.objectContaining({ level: 'error', msg: expect.stringMatching(/no-such-command/) }));
    } finally {
      await ex.stop();
    }
  });

  it('a bad flag value (not a number, out of range, not a choice, missing, empty) is a usage error naming the flag, in two lines', async () => {
    // All rejected while parsing, before any connection: no exchange needed.
    const cases: [string[], RegExp][] = [
      [['--assets', 'BTCUSDT', 'tcp', '--port', 'abc'], /--port needs a number, got "abc"/],
      [['--assets', 'BTCUSDT', 'tcp', '--port', '70000'], /--port must be an integer 0\.\.65535, got 70000/],
      [['--assets', 'BTCUSDT', 'tcp', '--stats-interval', '-1'], /--stats-interval must be a number >= 0, got -1/],
      [['--assets', 'BTCUSDT', 'tcp', '--metrics-port', '70000'], /--metrics-port must be an integer 0\.\.65535/],
      [['--assets', 'BTCUSDT', 'shm', '--heartbeat-ms', '-5'], /--heartbeat-ms must be a number >= 0/],
      [['--assets', 'BTCUSDT', 'shm', '--capacity=lots'], /--capacity needs a number, got "lots"/],
      [['--assets', 'BTCUSDT', 'tcp', '--max-clients', '0'], /--max-clients must be an integer >= 1/],
      [['format-demo', '--count', '-1'], /--count must be an integer 1\.\.10000000, got -1/],
      [['demo', '--rate', '0'], /--rate must be a number > 0, got 0/],
      [['watch', '--assets', 'BTCUSDT', '--duration', '-1'], /--duration must be a number > 0, got -1/],
      [['watch', '--assets', 'BTCUSDT', '--count-interval', '-1'], /--count-interval must be a number 0\.\.86400, got -1/],
      [['watch', '--assets', 'BTCUSDT', '--count-interval', 'often'], /--count-interval needs a number, got "often"/],
      [['exchange', '--symbols', 'btc usdt'], /"BTC USDT" is not a symbol/],
      [['--assets', 'BTCUSDT', 'tcp', '--wire', 'v3'], /Invalid values: Argument: wire, Given: "v3", Choices: "v2", "v1"/],
      [['shm-consumer'], /Missing required argument: name/],
      // An empty string flag is never a value: `--host ''` used to bind every interface.
      [['--assets', 'BTCUSDT', 'tcp', '--host', ''], /--host needs a value, got ""/],
      [['--assets', 'BTCUSDT', 'tcp', '--host='], /--host needs a value, got ""/],
      [['tcp-client', '--host', ' '], /--host needs a value, got " "/],
      [['--assets', 'BTCUSDT', 'shm', '--name', ''], /--name needs a value, got ""/],
      [['record', '--assets', 'BTCUSDT', '--out', ''], /--out needs a value, got ""/],
      [['exchange', '--replay', ''], /--replay needs a value, got ""/],
      [['--assets', 'BTCUSDT', 'nats', '--prefix', ''], /--prefix needs a value, got ""/],
      [['nats-consumer', '--url', 'nats://127.0.0.1:4222', '--url', ''], /--url needs a value, got ""/],
      [['watch', '--assets', 'BTCUSDT', '--ws-url', ''], /--ws-url needs a value, got ""/],
    ];
    // Four children at a time: all at once, on a loaded 2-core box, could outlast runCli's timeout.
    const results: RunResult[] = [];
    for (let i = 0; i < cases.length; i += 4) results.push(...(await Promise.all(cases.slice(i, i + 4).map(([args]) => runCli(args)))));
    results.forEach((r, i) => {
      expect({ args: cases[i][0], code: r.code }).toEqual({ args: cases[i][0], code: 2 });
      expect(r.stderr).toMatch(cases[i][1]);
      expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    });
  });
});

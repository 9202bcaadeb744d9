/** The CLI as users meet it: a real child process, its output and its exit codes. */
import { LocalExchange } from '../ts/exchange';
import { killChildren, runCli } from './support/cli';

afterEach(killChildren);

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

  it('a bad flag value (not a number, out of range, not a choice, missing) is a usage error naming the flag, in two lines', async () => {
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
      [['exchange', '--symbols', 'btc usdt'], /"BTC USDT" is not a symbol/],
      [['--assets', 'BTCUSDT', 'tcp', '--wire', 'v3'], /Invalid values: Argument: wire, Given: "v3", Choices: "v2", "v1"/],
      [['shm-consumer'], /Missing required argument: name/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    results.forEach((r, i) => {
      expect({ args: cases[i][0], code: r.code }).toEqual({ args: cases[i][0], code: 2 });
      expect(r.stderr).toMatch(cases[i][1]);
      expect(r.stderr.trim().split('\n').length).toBeLessThanOrEqual(2);
    });
  });
});

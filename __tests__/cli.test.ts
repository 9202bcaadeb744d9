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
});

/**
 * The Rust TCP consumer (crates/perp-signal-core/examples/tcp_consumer.rs, over the core's
 * `tcp_consumer` module) against the real forwarder: `perp-signal tcp` fed by the local exchange,
 * read at once by the Rust example and by `perp-signal tcp-client`; both must print the identical
 * trades (ids, exact prices and quantities), in v2 and v1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LocalExchange } from '../ts/exchange';
import { freePort, killChildren, repoRoot, runCli, spawnCli, waitForOutput } from './support/cli';

const EXAMPLE = path.join(repoRoot, 'target', 'release', 'examples', 'tcp_consumer');

afterEach(() => {
  killChildren();
  for (const c of rustChildren) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rustChildren.clear();
});

let ex: LocalExchange;
let endpoints: string[];
const rustChildren = new Set<ChildProcess>();

beforeAll(async () => {
  // `npm test` has built it already (cargo test builds examples); this is a no-op then.
  const b = spawnSync('cargo', ['build', '--release', '-q', '-p', 'perp-signal-core', '--example', 'tcp_consumer'], {
    cwd: repoRoot,
    encoding: 'utf8',
    timeout: 280_000,
  });
  if (b.status !== 0) throw new Error(`cargo build --example tcp_consumer failed: ${b.stderr}`);
  ex = new LocalExchange({ rate: 100, seed: 11 });
  const a = await ex.start();
  endpoints = ['--ws-url', a.wsUrl, '--rest-url', a.restUrl];
}, 300_000);

afterAll(() => ex.stop());

interface Rust {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

function runRust(args: string[]): Rust {
  expect(fs.existsSync(EXAMPLE)).toBe(true);
  const child = spawn(EXAMPLE, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  rustChildren.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Trade lines without the latency field (the only part that depends on when each printed). */
const tradeLines = (text: string): string[] =>
  text
    .split('\n')
    .filter((l) => l.length > 0 && !l.startsWith('#'))
    .map((l) => l.replace(/ latency=-?\d+ms$/, ''));

async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('Rust TCP consumer example against perp-signal tcp', () => {
  for (const [wire, busy] of [['v2', true], ['v1', false]] as const) {
    it(`decodes the same trades as perp-signal tcp-client (${wire}, ${busy ? 'busy-poll' : 'blocking'}), and exits 0 when the forwarder stops`, async () => {
      const port = await freePort();
      const fwd = spawnCli(['--assets', 'BTCUSDT,ETHUSDT', '--wire', wire, 'tcp', '--host', '127.0.0.1', '--port', String(port), ...endpoints]);
      await waitForOutput(fwd, /forwarding/);
      const rust = runRust(['--addr', `127.0.0.1:${port}`, ...(busy ? ['--busy-poll'] : [])]);
      await until(() => rust.stdout().includes('# connected'), 'the Rust consumer to connect');
      expect(rust.stdout().split('\n')[0]).toBe(`# connected (${wire}, BTCUSDT,ETHUSDT)`);

      const node = await runCli(['tcp-client', '--port', String(port), '--count', '40']);
      expect(node.code).toBe(0);
      const want = tradeLines(node.stdout);
      expect(want).toHaveLength(40);
      if (wire === 'v2') expect(want[0]).toMatch(/^\S+Z [A-Z]+ (BUY |SELL) \d+\.\d+ @ \d+\.\d{2} id=\d+$/);
      else expect(want[0]).not.toMatch(/id=/);
      await until(() => tradeLines(rust.stdout()).includes(want[39]), 'the Rust consumer to print the same trades');

      fwd.child.kill('SIGTERM');
      expect((await fwd.exited).code).toBe(0);
      expect(await rust.exited).toBe(0);
      expect(rust.stderr()).toMatch(/server closed the connection after \d+ trades/);
      // Node's 40 trades are a contiguous run of the Rust consumer's, character for character.
      const got = tradeLines(rust.stdout());
      // (v1 lines carry no id: two equal lines may occur, so try each place the first one is.)
      const starts = got.map((l, i) => (l === want[0] ? i : -1)).filter((i) => i >= 0);
      expect(starts.length).toBeGreaterThan(0);
      const at = starts.find((i) => got.slice(i, i + 40).join('\n') === want.join('\n')) ?? starts[0];
      expect(got.slice(at, at + 40)).toEqual(want);
      expect(rust.stdout()).toMatch(/ latency=\d+ms\n/);
    });
  }

  it('--stamps writes one line per frame with its monotonic receive time; a refused client exits 1 with the reason', async () => {
    const port = await freePort();
    const fwd = spawnCli(['--assets', 'BTCUSDT', 'tcp', '--host', '127.0.0.1', '--port', String(port), '--max-clients', '1', ...endpoints]);
    await waitForOutput(fwd, /forwarding/);
    const t0 = process.hrtime.bigint();
    // No --count: it stays connected (holding the one place) until the forwarder stops.
    const stamps = runRust(['--addr', `127.0.0.1:${port}`, '--stamps', '-']);
    await until(() => stamps.stderr().includes('connected'), 'the first consumer to connect');
    const refused = runRust(['--addr', `127.0.0.1:${port}`]);
    expect(await refused.exited).toBe(1);
    expect(refused.stderr()).toMatch(/refused by server: server is full: 1 clients connected \(max-clients\)/);
    await new Promise((r) => setTimeout(r, 300)); // some trades
    fwd.child.kill('SIGTERM');
    expect((await fwd.exited).code).toBe(0);
    expect(await stamps.exited).toBe(0);
    const t1 = process.hrtime.bigint();
    const rows = stamps
      .stdout()
      .trim()
      .split('\n')
      .map((l) => l.split(' ').map((x) => BigInt(x)));
    expect(rows.filter((r) => r[2] === 1n).length).toBeGreaterThan(0);
    rows.forEach((r, i) => {
      expect(r).toHaveLength(3);
      expect(r[0]).toBe(BigInt(i));
      expect(r[1] >= t0 && r[1] <= t1).toBe(true); // the clock of process.hrtime
      if (i > 0) expect(r[1] >= rows[i - 1][1]).toBe(true);
      expect([0n, 1n]).toContain(r[2]);
    });
  });
});

/**
 * A bad endpoint URL is refused before anything connects, with a message that names what the user
 * gave: the flag on the command line (`--ws-url`, as every CLI error names its flag), the
 * environment variable, or the option in the library (`wsUrl`).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { BinanceSource, PerpSignalError } from '../ts/index';

const bin = path.join(__dirname, '..', 'bin', 'perp-signal.js');

function run(args: string[], env: Record<string, string> = {}): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, PERP_SIGNAL_WS_URL: '', PERP_SIGNAL_REST_URL: '', ...env },
  });
  return { status: r.status, stderr: r.stderr };
}

describe('endpoint URLs', () => {
  it('the CLI names the --ws-url and --rest-url flags', () => {
    const ws = run(['tcp', '--assets', 'BTCUSDT', '--port', '0', '--ws-url', 'http://127.0.0.1:1']);
    expect(ws.status).toBe(2);
    expect(ws.stderr).toContain('--ws-url "http://127.0.0.1:1" is not a ws: or wss: URL');
    expect(ws.stderr).not.toMatch(/wsUrl/);
    const rest = run(['record', '--assets', 'BTCUSDT', '--out', '/dev/null', '--rest-url', 'ws://127.0.0.1:1']);
    expect(rest.status).toBe(2);
    expect(rest.stderr).toContain('--rest-url "ws://127.0.0.1:1" is not a http: or https: URL');
    expect(rest.stderr).not.toMatch(/restUrl/);
  });

  it('the CLI names the environment variable when the URL came from it', () => {
    const r = run(['tcp', '--assets', 'BTCUSDT', '--port', '0'], { PERP_SIGNAL_WS_URL: 'not a url' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('env PERP_SIGNAL_WS_URL "not a url" is not a ws: or wss: URL');
  });

  it('the library names its option', () => {
    let err: unknown;
    try {
      new BinanceSource({ symbols: ['BTCUSDT'], wsUrl: 'http://127.0.0.1:1' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PerpSignalError);
    expect((err as PerpSignalError).code).toBe('E_BAD_URL');
    expect((err as PerpSignalError).message).toMatch(/^wsUrl "http:\/\/127.0.0.1:1" is not a ws: or wss: URL/);
  });
});

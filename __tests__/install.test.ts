/**
 * What a user of a checkout gets from `npm pack`: a global install that puts `perp-signal` on
 * PATH and runs from any directory, and a library that another Node project can require whole.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const repoRoot = path.resolve(__dirname, '..');
let tmp: string;
let tarball: string;

function sh(cmd: string, args: string[], cwd: string): { out: string; code: number | null } {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout: 180_000,
    env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' },
  });
  return { out: `${r.stdout}\n${r.stderr}`, code: r.status };
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'perp-signal-install-'));
  const r = sh('npm', ['pack', '--json', '--pack-destination', tmp], repoRoot);
  expect(r.code).toBe(0);
  tarball = path.join(tmp, fs.readdirSync(tmp).find((f) => f.endsWith('.tgz')) ?? 'missing.tgz');
}, 120_000);

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('npm pack of a checkout', () => {
  it('npm install -g puts a working perp-signal on PATH, usable from any directory', () => {
    const prefix = path.join(tmp, 'global');
    const r = sh('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', tarball], tmp);
    expect(r.code === 0 ? 'ok' : r.out).toBe('ok');
    const bin = path.join(prefix, 'bin', 'perp-signal');
    expect(fs.existsSync(bin)).toBe(true);
    const version = sh(bin, ['--version'], os.tmpdir());
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(version.out.trim()).toBe(pkg.version);
    // A command that loads the native codec, run from an unrelated directory.
    const demo = sh(bin, ['format-demo', '--count', '2000'], '/');
    expect(demo.code).toBe(0);
    expect(demo.out).toMatch(/2000 trades: .* 0 decoded wrong/);
  }, 180_000);

  it("require('perp-signal-native') from another project gives the whole library", () => {
    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    const r = sh('npm', ['install', '--prefer-offline', tarball], app);
    expect(r.code === 0 ? 'ok' : r.out).toBe('ok');
    const script = `
      const ps = require('perp-signal-native');
      const names = ['Encoder', 'Decoder', 'BinanceSource', 'LocalExchange', 'TcpFanout', 'connectTcp',
        'ShmPublisher', 'ShmConsumer', 'NatsPublisher', 'NatsConsumer', 'PerpSignalError'];
      const missing = names.filter((n) => typeof ps[n] !== 'function');
      const enc = new ps.Encoder({ wire: 'v2', assets: [{ symbol: 'BTCUSDT', refPrice: '61800.30', refQty: '0.010', priceScale: 2, qtyScale: 3 }] });
      const dec = new ps.Decoder(enc.header());
      const t = { symbol: 'BTCUSDT', tradeTime: 1723161256322, eventTime: 1723161256322, tradeId: 5266583935,
        price: '61800.30', qty: '0.006', maker: false, type: 'MARKET', recvWallNs: 0n, recvMonoNs: 0n };
      const [d] = dec.decodeFrames(enc.encodeBatch([t]));
      console.log(JSON.stringify({ missing, price: d.price, qty: d.qty, id: d.tradeId }));`;
    const out = sh(process.execPath, ['-e', script], app);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.out.trim().split('\n')[0])).toEqual({ missing: [], price: '61800.30', qty: '0.006', id: 5266583935 });
    // The types ship too.
    expect(fs.existsSync(path.join(app, 'node_modules', 'perp-signal-native', 'dist', 'index.d.ts'))).toBe(true);
  }, 180_000);
});

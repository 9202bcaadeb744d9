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
    // The types ship too, and a strict TypeScript program that uses them type-checks.
    const dts = path.join(app, 'node_modules', 'perp-signal-native', 'dist');
    expect(fs.existsSync(path.join(dts, 'index.d.ts'))).toBe(true);
    fs.writeFileSync(
      path.join(app, 'use.ts'),
      `import { connectTcp, ShmConsumer, Encoder, Decoder, BinanceSource, PerpSignalError, type Trade } from 'perp-signal-native';
      export async function firstPrice(): Promise<string | undefined> {
        for await (const ev of connectTcp({ host: '127.0.0.1', port: 9000 })) {
          if (ev.kind === 'trade') return ev.price;
          if (ev.kind === 'gap' || ev.kind === 'lost') throw new PerpSignalError('E_GAP', JSON.stringify(ev));
        }
        return undefined;
      }
      export async function fromRing(): Promise<number> {
        let n = 0;
        for await (const ev of ShmConsumer.open('q').decoded()) if (ev.kind === 'trade') n += (ev.tradeId ?? 0); // v1 carries no trade id
        return n;
      }
      export function roundTrip(t: Trade): string {
        const enc = new Encoder({ wire: 'v2', assets: [{ symbol: t.symbol, refPrice: t.price, refQty: t.qty, priceScale: 2, qtyScale: 3 }] });
        const [d] = new Decoder(enc.header()).decodeFrames(enc.encodeBatch([t]));
        return d.kind === 'trade' ? d.price : '';
      }
      export const source = new BinanceSource({ symbols: ['BTCUSDT'] });\n`,
    );
    fs.writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'commonjs', moduleResolution: 'node',
          skipLibCheck: false, types: ['node'], typeRoots: [path.join(repoRoot, 'node_modules', '@types')] },
        files: ['use.ts'],
      }),
    );
    const tsc = sh(process.execPath, [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], app);
    expect(tsc.code === 0 ? 'ok' : tsc.out).toBe('ok');
    // No `any` in the declarations (comments aside).
    const withAny: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const f = path.join(dir, e.name);
        if (e.isDirectory()) walk(f);
        else if (f.endsWith('.d.ts')) {
          const code = fs.readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
          if (/\bany\b/.test(code)) withAny.push(path.relative(dts, f));
        }
      }
    };
    walk(dts);
    expect(withAny).toEqual([]);
  }, 180_000);

  it('packs what a user needs and none of the repo\'s tests, sources, benchmarks, fixtures or build output', () => {
    const r = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const files = r.stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'bin/perp-signal.js', 'dist/index.js', 'dist/index.d.ts',
      'scripts/install.js', 'Cargo.lock', 'crates/perp-signal-core/Cargo.toml']));
    const unwanted = files.filter((f) => /^(__tests__|ts|bench|testdata|target|node_modules|npm)\/|\.test\.|fixture|\.tgz$/.test(f));
    expect(unwanted).toEqual([]);
  });

  it('ships no source map that points at a file the package lacks: each source is packed or inlined', () => {
    const unpacked = path.join(tmp, 'unpacked');
    fs.mkdirSync(unpacked);
    expect(spawnSync('tar', ['-xzf', tarball, '-C', unpacked]).status).toBe(0);
    const root = path.join(unpacked, 'package');
    const jsFiles: string[] = [];
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const f = path.join(dir, e.name);
        if (e.isDirectory()) walk(f);
        else if (f.endsWith('.js')) jsFiles.push(f);
      }
    };
    walk(root);
    const broken: string[] = [];
    let maps = 0;
    for (const js of jsFiles) {
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(fs.readFileSync(js, 'utf8'))?.[1];
      if (url === undefined || url.startsWith('data:')) continue;
      const mapFile = path.resolve(path.dirname(js), url);
      if (!fs.existsSync(mapFile)) {
        broken.push(`${path.relative(root, js)} -> ${url} (no such map)`);
        continue;
      }
      maps += 1;
      const map = JSON.parse(fs.readFileSync(mapFile, 'utf8')) as { sources: string[]; sourceRoot?: string; sourcesContent?: (string | null)[] };
      map.sources.forEach((src, i) => {
        const inlined = typeof map.sourcesContent?.[i] === 'string';
        const packed = fs.existsSync(path.resolve(path.dirname(mapFile), map.sourceRoot ?? '', src));
        if (!inlined && !packed) broken.push(`${path.relative(root, mapFile)} -> ${src}`);
      });
    }
    expect(broken).toEqual([]);
    // The check saw the maps tsc writes (one per module), so it is not passing on nothing.
    expect(maps).toBeGreaterThan(20);
  });
});

/** Loads the shared real BTCUSDT capture (never copied into the repo). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { Trade } from '../../ts/types';

const NAME = 'binance-usdm-btcusdt-trades-20240808.txt.gz';

/** env PERP_SIGNAL_SHARED, else <repoRoot>/../shared, else /work/shared. */
export function sharedDir(): string {
  const repoRoot = path.resolve(__dirname, '..', '..');
  const candidates = [process.env.PERP_SIGNAL_SHARED, path.join(repoRoot, '..', 'shared'), '/work/shared'];
  for (const c of candidates) {
    if (c && fs.existsSync(path.join(c, 'fixtures', NAME))) return c;
  }
  throw new Error(`shared fixtures not found (tried ${candidates.filter(Boolean).join(', ')}); set PERP_SIGNAL_SHARED`);
}

let cache: Trade[] | null = null;

export function fixtureTrades(): Trade[] {
  if (cache) return cache;
  const text = zlib.gunzipSync(fs.readFileSync(path.join(sharedDir(), 'fixtures', NAME))).toString('utf8');
  const out: Trade[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const sp = line.indexOf(' ');
    const d = (JSON.parse(line.slice(sp + 1)) as { data: Record<string, string | number | boolean> }).data;
    out.push({
      symbol: String(d.s),
      tradeTime: Number(d.T),
      eventTime: Number(d.E),
      tradeId: Number(d.t),
      price: String(d.p),
      qty: String(d.q),
      maker: d.m === true,
      type: String(d.X),
      recvWallNs: BigInt(line.slice(0, sp)),
      recvMonoNs: 0n,
    });
  }
  cache = out;
  return out;
}

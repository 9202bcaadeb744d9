/**
 * The real BTCUSDT capture (../shared/fixtures/, never copied into the repo) as `Trade`s. The shared
 * folder is found as: $PERP_SIGNAL_SHARED, else `<repoRoot>/../shared`, else `/work/shared`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { Trade } from '../../ts/types';

const FIXTURE = 'binance-usdm-btcusdt-trades-20240808.txt.gz';

export function sharedDir(): string {
  const repoRoot = path.resolve(__dirname, '..', '..');
  const candidates = [process.env.PERP_SIGNAL_SHARED, path.join(repoRoot, '..', 'shared'), '/work/shared'];
  for (const c of candidates) if (c && fs.existsSync(path.join(c, 'fixtures', FIXTURE))) return c;
  throw new Error(`fixture ${FIXTURE} not found in ${candidates.filter(Boolean).join(', ')} (set PERP_SIGNAL_SHARED)`);
}

let cache: Trade[] | undefined;

/** Every trade of the capture, in order (21,313 of them). */
export function fixtureTrades(): Trade[] {
  if (cache) return cache;
  const text = zlib.gunzipSync(fs.readFileSync(path.join(sharedDir(), 'fixtures', FIXTURE))).toString('utf8');
  const out: Trade[] = [];
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ');
    if (sp < 0) continue;
    const d = (JSON.parse(line.slice(sp + 1)) as { data: Record<string, unknown> }).data;
    const recvWallNs = BigInt(line.slice(0, sp));
    out.push({
      symbol: String(d.s),
      tradeTime: Number(d.T),
      eventTime: Number(d.E),
      tradeId: Number(d.t),
      price: String(d.p),
      qty: String(d.q),
      maker: d.m === true,
      type: String(d.X),
      recvWallNs,
      recvMonoNs: recvWallNs,
    });
  }
  cache = out;
  return out;
}

/**
 * The forwarder with the ring as its transport: `perp-signal --assets ... shm --name ...` as a
 * child process fed by the local exchange, read by a ShmConsumer; every trade arrives exactly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ShmConsumer, type DecodedTrade } from '../ts/index';
import type { TradePayload } from '../ts/exchange/generator';
import { Harness, repoRoot, waitFor } from './source.helpers';

const bin = path.join(repoRoot, 'bin', 'perp-signal.js');
const h = new Harness();
const children: ChildProcess[] = [];
const names: string[] = [];
const canon = (s: string): string => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const n of names.splice(0)) fs.rmSync(`/dev/shm/${n}`, { force: true });
  await h.cleanup();
});

describe.each(['v2', 'v1'])('perp-signal shm (wire %s)', (wire) => {
  it('forwards the exchange trades into the ring exactly, and removes the ring on SIGTERM', async () => {
    const { ex, addr } = await h.exchange({ symbols: ['BTCUSDT', 'ETHUSDT'], rate: 400 });
    // v1 carries no trade id: its trades are matched by value; v2 ones by id, field for field.
    const byValue = new Set<string>();
    const byId = new Map<string, TradePayload>();
    ex.on('trade', (p) => {
      byValue.add(`${p.s}:${p.T}:${canon(p.p)}:${canon(p.q)}:${p.m}`);
      byId.set(`${p.s}:${p.t}`, p);
    });
    const name = `ps-jest-fwd-${wire}-${process.pid}`;
    names.push(name);
    const args = ['--assets', 'btcusdt,ethusdt', 'shm', '--name', name, '--capacity', '65536', '--wire', wire];
    const fwd = spawn(process.execPath, [bin, ...args, '--ws-url', addr.wsUrl, '--rest-url', addr.restUrl, '--stats-interval', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(fwd);
    let err = '';
    fwd.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    await waitFor(() => fs.existsSync(`/dev/shm/${name}`) || fwd.exitCode !== null, 15000, `the ring (stderr: ${err})`);
    expect(fwd.exitCode).toBeNull();

    // The file exists a moment before the producer has written its header (magic): retry that.
    let con: ShmConsumer | undefined;
    await waitFor(() => {
      try {
        con = ShmConsumer.open(name);
        return true;
      } catch (e) {
        if ((e as { code?: string }).code !== 'E_NOT_A_QUEUE') throw e;
        return false;
      }
    }, 5000, 'the ring header');
    if (!con) throw new Error('no consumer');
    const got: DecodedTrade[] = [];
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 20000);
    for await (const m of con.decoded({ signal: ac.signal, spinPolls: 100 })) {
      if (m.kind === 'trade') got.push(m);
      else expect(['resync', 'heartbeat']).toContain(m.kind);
      if (got.length === 200) break;
    }
    clearTimeout(timer);
    con.close();
    expect(got).toHaveLength(200);
    const lastId: Record<string, number> = {};
    for (const t of got) {
      expect(byValue.has(`${t.symbol}:${t.time}:${canon(t.price)}:${canon(t.qty)}:${t.maker}`)).toBe(true);
      if (wire === 'v2') {
        const p = byId.get(`${t.symbol}:${t.tradeId}`);
        expect([t.price, t.qty, t.time, t.maker, t.type]).toEqual([p?.p, p?.q, p?.T, p?.m, p?.X]);
        if (lastId[t.symbol] !== undefined) expect(t.tradeId).toBe(lastId[t.symbol] + 1);
        lastId[t.symbol] = t.tradeId as number;
      }
    }
    expect(new Set(got.map((t) => t.symbol))).toEqual(new Set(['BTCUSDT', 'ETHUSDT']));

    fwd.kill('SIGTERM');
    await waitFor(() => fwd.exitCode !== null, 10000, 'the forwarder to stop');
    expect(fwd.exitCode).toBe(0);
    expect(fs.existsSync(`/dev/shm/${name}`)).toBe(false);
  });
});

import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { frame } from '../ts/codec';
import { startFanout, useCleanups } from './helpers/fanout';
import { publishStream } from './helpers/net';
import { canon, makeTrades, until } from './helpers/stream';

const BIN = path.join(__dirname, '..', 'bin', 'perp-signal.js');

interface Child {
  proc: ChildProcess;
  lines: string[];
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const defer = useCleanups();

function run(args: string[]): Child {
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
    const parts = (partial + s).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  proc.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    proc.on('exit', (code, signal) => r({ code, signal })),
  );
  defer(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    return exit;
  });
  return { proc, lines, stderr: () => err, exit };
}

const server = (wire: 'v1' | 'v2', heartbeatMs = 0) => startFanout(defer, wire, { heartbeatMs });

describe('perp-signal tcp-client (child process)', () => {
  for (const wire of ['v2', 'v1'] as const) {
    it(`--json (${wire}): one JSON object per trade, an "event" line for a gap, no heartbeat lines; SIGTERM exits 0`, async () => {
      const { fanout, encoder, port } = await server(wire, 30);
      const child = run(['tcp-client', '--port', String(port), '--json']);
      await until(() => fanout.stats().clients === 1, 'the client to connect', 15_000);
      const trades = makeTrades(3000, 31);
      await publishStream((ts) => encoder.encodeBatch(ts), (b) => fanout.publish(b), trades.slice(0, 2000));
      const gap = encoder.gap({ symbol: 'ETHUSDT', lastId: 100, nextId: 103, reason: 'jump' });
      if (gap) fanout.publish(frame(gap));
      await new Promise((r) => setTimeout(r, 150)); // heartbeats go out in the quiet time (v2)
      await publishStream((ts) => encoder.encodeBatch(ts), (b) => fanout.publish(b), trades.slice(2000));
      const tradeLines = (): string[] => child.lines.filter((l) => !l.includes('"event"'));
      await until(() => tradeLines().length === trades.length, 'every trade line', 15_000);
      child.proc.kill('SIGTERM');
      expect(await child.exit).toEqual({ code: 0, signal: null });

      const parsed = child.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(parsed[0]).toMatchObject({ event: 'connected', wire, symbols: ['BTCUSDT', 'ETHUSDT', 'SOLUSDT'] });
      const events = parsed.filter((o) => 'event' in o).map((o) => o.event);
      expect(events).toEqual(wire === 'v2' ? ['connected', 'gap'] : ['connected']);
      if (wire === 'v2') {
        const gapAt = parsed.findIndex((o) => o.event === 'gap');
        expect(parsed[gapAt]).toMatchObject({ symbol: 'ETHUSDT', lastId: 100, nextId: 103 });
        expect(gapAt).toBe(1 + 2000); // exactly between the trades around it
      }
      const got = parsed.filter((o) => !('event' in o));
      got.forEach((o, i) => {
        const t = trades[i];
        expect(typeof o.price).toBe('string');
        expect(typeof o.qty).toBe('string');
        expect(typeof o.latencyMs).toBe('number');
        expect({ symbol: o.symbol, time: o.time, price: canon(o.price as string), qty: canon(o.qty as string), maker: o.maker }).toEqual({
          symbol: t.symbol,
          time: t.tradeTime,
          price: canon(t.price),
          qty: canon(t.qty),
          maker: t.maker,
        });
        if (wire === 'v2') expect(o.tradeId).toBe(t.tradeId);
        else expect(o.tradeId).toBeUndefined();
      });
    });
  }

  it('prints readable lines with latency by default, and --count N exits 0 after N trades', async () => {
    const { fanout, encoder, port } = await server('v2');
    const child = run(['tcp-client', '--port', String(port), '--count', '5']);
    await until(() => fanout.stats().clients === 1, 'the client to connect', 15_000);
    const trades = makeTrades(10, 41);
    fanout.publish(encoder.encodeBatch(trades));
    expect(await child.exit).toEqual({ code: 0, signal: null });
    const tradeLines = child.lines.filter((l) => !l.startsWith('#') && l.length > 0);
    expect(tradeLines).toHaveLength(5);
    const t = trades[0];
    expect(tradeLines[0]).toBe(
      `${new Date(t.tradeTime).toISOString()} ${t.symbol} ${t.maker ? 'SELL' : 'BUY '} ${t.qty} @ ${t.price} id=${t.tradeId} ` +
        tradeLines[0].slice(tradeLines[0].indexOf('latency=')),
    );
    expect(tradeLines[0]).toMatch(/ latency=\d+ms$/);
  });

  it('--no-reconnect exits 1 with the reason when the server goes away', async () => {
    const { fanout, port } = await server('v1');
    const child = run(['tcp-client', '--port', String(port), '--json', '--no-reconnect']);
    await until(() => fanout.stats().clients === 1, 'the client to connect', 15_000);
    await fanout.close();
    expect(await child.exit).toEqual({ code: 1, signal: null });
    expect(JSON.parse(child.lines[child.lines.length - 1])).toMatchObject({
      event: 'disconnected',
      reason: 'server closed the connection',
    });
  });

  it('a bad --port is a usage error: exit 2 and a message naming the option', async () => {
    const child = run(['tcp-client', '--port', '70000']);
    expect(await child.exit).toEqual({ code: 2, signal: null });
    expect(child.stderr()).toMatch(/--port 70000 is not a TCP port/);
  });
});

describe('perp-signal tcp-client output', () => {
  it('stops quietly with exit 0 when the reader of its output goes away (`| head`)', async () => {
    const { fanout, encoder, port } = await server('v2');
    const child = run(['tcp-client', '--port', String(port), '--json']);
    await until(() => fanout.stats().clients === 1, 'the client to connect', 15_000);
    fanout.publish(encoder.encodeBatch(makeTrades(100, 51)));
    await until(() => child.lines.length >= 10, 'some lines');
    child.proc.stdout!.destroy();
    const gen = makeTrades(20_000, 52);
    for (let i = 0; i < gen.length && child.proc.exitCode === null; i += 1000) {
      fanout.publish(encoder.encodeBatch(gen.slice(i, i + 1000)));
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(await child.exit).toEqual({ code: 0, signal: null });
    expect(child.stderr()).not.toMatch(/EPIPE|Error/);
  });
});

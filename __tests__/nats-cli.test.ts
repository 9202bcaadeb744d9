/**
 * `perp-signal nats-consumer` as a real child process against a real nats-server: JSON lines as
 * tcp-client prints them, event lines for snapshots, losses and gap notices, no heartbeat lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { Encoder, frame } from '../ts/codec';
import { NatsPublisher } from '../ts/transports/nats';
import { NatsServer } from './helpers/nats-server';
import { fixtureTrades } from './oracle/fixture';

jest.setTimeout(60_000);

const BIN = path.join(__dirname, '..', 'bin', 'perp-signal.js');
const ASSETS = [
  { symbol: 'BTCUSDT', refPrice: '61800.30', refQty: '0.006', priceScale: 2, qtyScale: 3 },
  { symbol: 'ETHUSDT', refPrice: '2500.00', refQty: '0.100', priceScale: 2, qtyScale: 3 },
];

let server: NatsServer;
const children: ChildProcess[] = [];

beforeAll(async () => {
  server = await NatsServer.start();
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await server?.stop();
});

/** Runs the CLI; `lines` fills as it prints; `until` waits for a line matching. */
function run(args: string[]): {
  child: ChildProcess;
  lines: string[];
  stderr: () => string;
  until: (pred: (l: string) => boolean, what: string) => Promise<void>;
  exit: Promise<number | null>;
} {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines: string[] = [];
  let err = '';
  let partial = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (s: string) => {
    const parts = (partial + s).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => (err += s));
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const until = async (pred: (l: string) => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + 15_000;
    while (!lines.some(pred)) {
      if (Date.now() > deadline || child.exitCode !== null) {
        throw new Error(`no line with ${what}; stdout: ${lines.slice(-5).join('\n')}\nstderr: ${err}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { child, lines, stderr: () => err, until, exit };
}

describe('perp-signal nats-consumer', () => {
  it('prints one JSON object per trade, event lines for resyncs and gaps, and no heartbeats', async () => {
    const enc = new Encoder({ wire: 'v2', assets: ASSETS });
    const pub = await NatsPublisher.connect({ url: server.url, prefix: 'cli', encoder: enc });
    try {
      const btc = fixtureTrades().slice(0, 40);
      const eth = btc.map((t, i) => ({ ...t, symbol: 'ETHUSDT', tradeId: 9000 + i, price: '2501.25', qty: '1.000' }));
      const cli = run(['nats-consumer', '--url', server.url, '--prefix', 'cli', '--symbols', 'btcusdt', '--json', '--count', '30']);
      await cli.until((l) => l.includes('"event":"synced"'), 'the first snapshot');

      pub.publish(enc.encodeBatch(btc.slice(0, 10)));
      pub.publish(enc.encodeBatch(eth)); // another symbol: not subscribed, never printed
      pub.publish(frame(enc.heartbeat(Date.now()) as Buffer));
      pub.publish(frame(enc.gap({ symbol: 'BTCUSDT', lastId: btc[9].tradeId, nextId: btc[10].tradeId, reason: 'reconnect' }) as Buffer));
      // One BTC frame lost on the way: the consumer must say so and resync before printing more.
      enc.encodeBatch(btc.slice(10, 11));
      pub.publish(enc.encodeBatch(btc.slice(11, 12)));
      await cli.until((l) => l.includes('"event":"synced"') && l.includes('"sync":2'), 'the resync');
      pub.publish(enc.encodeBatch(btc.slice(12)));
      expect(await cli.exit).toBe(0);

      const objs = cli.lines.filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
      const events = objs.filter((o) => 'event' in o);
      expect(events.map((o) => o.event)).toEqual(['synced', 'gap', 'lost', 'synced']);
      expect(events[1]).toMatchObject({ symbol: 'BTCUSDT', lastId: btc[9].tradeId, nextId: btc[10].tradeId });
      expect(events[2]).toMatchObject({ reason: 'lost', symbol: 'BTCUSDT' });
      const trades = objs.filter((o) => !('event' in o));
      const want = [...btc.slice(0, 10), ...btc.slice(12, 32)];
      expect(trades).toHaveLength(30);
      trades.forEach((o, i) => {
        const t = want[i];
        expect(o).toMatchObject({ symbol: 'BTCUSDT', time: t.tradeTime, price: t.price, qty: t.qty, maker: t.maker, tradeId: t.tradeId });
        expect(typeof o.latencyMs).toBe('number');
      });
    } finally {
      await pub.close();
    }
  });

  it('exits 1 naming the URL when no server is there, and 2 on a bad prefix', async () => {
    const gone = await NatsServer.start();
    const url = gone.url;
    await gone.stop();
    const down = run(['nats-consumer', '--url', url]);
    expect(await down.exit).toBe(1);
    expect(down.stderr()).toContain(url);
    const bad = run(['nats-consumer', '--url', server.url, '--prefix', 'perp.*']);
    expect(await bad.exit).toBe(2);
    expect(bad.stderr()).toMatch(/prefix "perp.\*" is not valid/);
  });
});

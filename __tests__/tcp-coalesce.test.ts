/**
 * The fan-out writes the first publish of an event-loop turn at once and the rest of the turn to
 * each client together, at the end of the turn (or once the oldest waiting frame is
 * `maxCoalesceUs` old). These tests pin what that must not
 * change: order, exact bytes, late joiners that join while a turn's frames wait, and the age bound.
 */
import { Decoder, Encoder } from '../ts/codec';
import { TcpFanout, type TcpFanoutOptions } from '../ts/transports/tcp';
import { startFanout as startFanoutOn, useCleanups } from './helpers/fanout';
import { framesLength, RawClient } from './helpers/net';
import { assetSpecs, expectSameTrades, makeTrades, until } from './helpers/stream';
import { runCli } from './support/cli';

const defer = useCleanups();
const startFanout = (wire: 'v1' | 'v2', opts: Partial<TcpFanoutOptions> = {}) => startFanoutOn(defer, wire, opts);
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Blocks the event loop (not the kernel) for `ms`: connections complete meanwhile and wait to be accepted. */
function blockLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The messages a raw client's complete frames after its START and header decode to. */
function decodedTrades(raw: RawClient): object[] {
  const frames = raw.frames();
  if (frames.length < 2) return [];
  return new Decoder(frames[1]).decodeFrames(raw.data.subarray(framesLength(raw.data, 2), framesLength(raw.data, frames.length)));
}

describe('TcpFanout coalescing of one turn\'s frames', () => {
  it('writes many publishes of one turn once per client, in order and byte for byte', async () => {
    // No age bound here (encoding 20 000 trades takes a while): the end of the turn is the trigger.
    const { fanout, encoder, port } = await startFanout('v2', { maxCoalesceUs: 10_000_000 });
    const raws = [new RawClient(port), new RawClient(port)];
    for (const r of raws) defer(() => r.close());
    await until(() => fanout.stats().clients === 2, 'two clients');
    await until(() => raws.every((r) => r.frames().length === 2), 'the handshakes');
    const handshakeOut = fanout.stats().bytesOut;

    const trades = makeTrades(20_000, 21);
    const published: Buffer[] = [];
    // 200 publishes in one turn, as 200 socket reads of the exchange in one poll phase would give.
    for (let i = 0; i < trades.length; i += 100) {
      const b = encoder.encodeBatch(trades.slice(i, i + 100));
      published.push(b);
      fanout.publish(b);
    }
    // The first publish went out at once, the other 199 wait for the end of the turn.
    expect(fanout.stats().bytesOut).toBe(handshakeOut + 2 * published[0].length);
    await nextTurn();
    const all = Buffer.concat(published);
    expect(fanout.stats().bytesOut).toBe(handshakeOut + 2 * all.length);
    await until(() => raws.every((r) => r.data.length >= framesLength(r.data, 2) + all.length), 'every byte at both clients');
    for (const r of raws) {
      expect(r.data.subarray(framesLength(r.data, 2)).equals(all)).toBe(true);
      expectSameTrades(decodedTrades(r), trades);
    }
  });

  it('with maxCoalesceUs: 0, each publish is written at once', async () => {
    const { fanout, encoder, port } = await startFanout('v2', { maxCoalesceUs: 0 });
    const raw = new RawClient(port);
    defer(() => raw.close());
    await until(() => fanout.stats().clients === 1, 'the client');
    const before = fanout.stats().bytesOut;
    const b = encoder.encodeBatch(makeTrades(10, 22));
    fanout.publish(b);
    expect(fanout.stats().bytesOut).toBe(before + b.length);
  });

  it('a turn longer than maxCoalesceUs is written before it ends, and nothing is reordered or lost', async () => {
    const { fanout, encoder, port } = await startFanout('v2', { maxCoalesceUs: 2000 });
    const raw = new RawClient(port);
    defer(() => raw.close());
    await until(() => fanout.stats().clients === 1, 'the client');
    const start = fanout.stats().bytesOut;
    const trades = makeTrades(3000, 23);
    const sizes: number[] = [];
    const outAfter: number[] = [];
    for (let i = 0; i < 30; i++) {
      const b = encoder.encodeBatch(trades.slice(i * 100, (i + 1) * 100));
      sizes.push(b.length);
      fanout.publish(b);
      outAfter.push(fanout.stats().bytesOut - start);
      blockLoop(1); // a long turn: the forwarder busy with reads
    }
    // The first publish goes at once, the next ones wait; once the oldest waiting frame is 2 ms
    // old they all go in one write.
    expect(outAfter[0]).toBe(sizes[0]);
    expect(outAfter[1]).toBe(sizes[0]);
    const firstWrite = outAfter.findIndex((x) => x > sizes[0]);
    expect(firstWrite).toBeGreaterThan(1);
    expect(firstWrite).toBeLessThan(10);
    expect(outAfter[firstWrite]).toBe(sizes.slice(0, firstWrite + 1).reduce((s, x) => s + x, 0));
    await nextTurn();
    await until(() => decodedTrades(raw).length === trades.length, 'every trade');
    expectSameTrades(decodedTrades(raw), trades);
  });

  it('v1: a gap the wire cannot carry first writes the turn\'s frames, then ends every connection', async () => {
    const { fanout, encoder, port } = await startFanout('v1', { maxCoalesceUs: 10_000_000 });
    const raw = new RawClient(port);
    defer(() => raw.close());
    await until(() => fanout.stats().clients === 1, 'the client');
    const trades = makeTrades(500, 24);
    fanout.publish(encoder.encodeBatch(trades.slice(0, 250)));
    fanout.publish(encoder.encodeBatch(trades.slice(250)));
    // Same turn: the second publish still waits when the gap comes.
    fanout.uncarriedGap({ symbol: 'BTCUSDT', lastId: 1, nextId: 9, reason: 'jump' });
    await until(() => raw.ended, 'the end of the connection');
    expectSameTrades(decodedTrades(raw), trades, 'frames before the gap');
    expect(raw.data.length).toBe(framesLength(raw.data, raw.frames().length)); // no partial frame
  });

  it('rejects a negative maxCoalesceUs with E_USAGE', () => {
    const encoder = new Encoder({ wire: 'v2', assets: assetSpecs() });
    expect(() => new TcpFanout({ port: 1, maxCoalesceUs: -1, encoder })).toThrow(
      expect.objectContaining({ code: 'E_USAGE', message: expect.stringMatching(/maxCoalesceUs/) }),
    );
  });

  for (const wire of ['v1', 'v2'] as const) {
    it(`${wire}: clients that join while a turn's frames wait get only the frames after their header`, async () => {
      const { fanout, encoder, port } = await startFanout(wire);
      const trades = makeTrades(6000, wire === 'v1' ? 31 : 32);
      let published = 0;
      let lastBatchBytes = 0;
      const publishNext = (n: number): void => {
        const b = encoder.encodeBatch(trades.slice(published, published + n));
        lastBatchBytes = b.length;
        fanout.publish(b);
        published += n;
      };
      const first = new RawClient(port);
      defer(() => first.close());
      await until(() => fanout.stats().clients === 1, 'the first client');

      // A timer stands in for the exchange socket's reads. The loop is held until the timer is due
      // and a new client's connection has completed in the kernel; the next loop iteration then
      // runs the timer (publish: the frames wait for the end of the turn) before its poll phase
      // accepts the client: a join in the middle of a turn.
      let outBefore = 0;
      const joins: { raw: RawClient; at: number; midTurn: boolean }[] = [];
      const byRemote = new Map<string, { at: number; midTurn: boolean }>();
      fanout.on('connect', (info: { remote: string }) => {
        // Mid-turn: the timer's publish is not written yet, only the new client's handshake is.
        const written = fanout.stats().bytesOut - outBefore;
        byRemote.set(info.remote, { at: published, midTurn: written > 0 && written < lastBatchBytes });
      });
      // Bounded: up to 8 joins, each checked; at least one must land mid-turn.
      for (let k = 0; k < 8 && !joins.some((j) => j.midTurn); k++) {
        publishNext(50);
        await nextTurn();
        outBefore = fanout.stats().bytesOut;
        setTimeout(() => {
          publishNext(100);
          outBefore = fanout.stats().bytesOut;
        }, 1);
        const raw = new RawClient(port);
        defer(() => raw.close());
        process.nextTick(() => blockLoop(20));
        await raw.connected;
        await until(() => byRemote.has(`127.0.0.1:${raw.socket.localPort}`), 'the join');
        joins.push({ raw, ...byRemote.get(`127.0.0.1:${raw.socket.localPort}`)! });
      }
      expect(joins.some((j) => j.midTurn)).toBe(true);
      while (published < trades.length) {
        publishNext(Math.min(700, trades.length - published));
        await nextTurn();
      }
      await until(
        () => decodedTrades(first).length >= trades.length && joins.every((j) => decodedTrades(j.raw).length >= trades.length - j.at),
        'every trade at every client',
      );
      expectSameTrades(decodedTrades(first), trades, 'the first client');
      for (const j of joins) {
        expectSameTrades(decodedTrades(j.raw), trades.slice(j.at), `client joined at ${j.at}${j.midTurn ? ', mid-turn' : ''}`);
      }
    });
  }
});

describe('perp-signal tcp --max-coalesce-us', () => {
  it('is listed with its default, and a negative value exits 2 saying what is allowed', async () => {
    const help = await runCli(['tcp', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--max-coalesce-us[^[]*\[number\] \[default: 1000\]/);
    const bad = await runCli(['--assets', 'BTCUSDT', 'tcp', '--max-coalesce-us', '-5']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--max-coalesce-us must be 0 or a positive number of µs, got -5/);
  });
});

/**
 * Start-up of the forwarder runner when the REST reference is missing (the local exchange has no
 * trade history before its replay starts): the source runs while the encoder waits for each
 * symbol's first trade, and then while the transport is made. No trade that arrives in that window
 * may be lost, however long the transport takes to come up (a silent loss the source cannot see:
 * it passed the trades on, so it reports no gap).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalExchange } from '../ts/exchange';
import { startForwarder } from '../ts/cli/forward';
import { Decoder } from '../ts/index';
import type { DecodedMessage } from '../ts/index';
import { fixtureFrames } from './oracle/fixture';
import { waitFor } from './source.helpers';

jest.setTimeout(30_000);

const N = 3000;

it('hands off every trade that arrived while the transport was being made', async () => {
  const frames = fixtureFrames().slice(0, N);
  const file = path.join(os.tmpdir(), `perp-signal-startup-${process.pid}.txt`);
  fs.writeFileSync(file, frames.map((f, i) => `${1723161255000000000 + i * 1000} ${f}`).join('\n') + '\n');
  const ex = new LocalExchange({ symbols: ['BTCUSDT'], replay: file, speed: 0 });
  const addr = await ex.start();
  const published: Buffer[] = [];
  let header: Buffer | undefined;
  try {
    const fwd = await startForwarder(
      { assets: ['BTCUSDT'], 'ws-url': addr.wsUrl, 'rest-url': addr.restUrl, 'stats-interval': 0, 'heartbeat-ms': 0, 'log-level': 'error' },
      async (encoder) => {
        header = encoder.header();
        // A transport that takes a while to come up (a bind, a connection to a broker).
        await new Promise((r) => setTimeout(r, 300));
        return {
          name: 'collect',
          publish: (b: Buffer) => void published.push(b),
          consumers: () => 1,
          drops: () => 0,
          close: async () => {},
        };
      },
    );
    try {
      await waitFor(() => fwd.stats.snapshot().trades >= N, 10_000, `${N} trades handed off`);
      expect(fwd.source.stats().gaps).toBe(0);
    } finally {
      await fwd.stop();
    }
  } finally {
    await ex.stop();
    fs.rmSync(file, { force: true });
  }
  // Every trade of the replay, once, in order, from the header taken before the first frame.
  const msgs: DecodedMessage[] = new Decoder(header as Buffer).decodeFrames(Buffer.concat(published));
  const ids = msgs.map((m) => (m.kind === 'trade' ? m.tradeId : -1));
  expect(ids.length).toBe(N);
  expect(ids.every((id, i) => id === 5266583935 + i)).toBe(true);
});

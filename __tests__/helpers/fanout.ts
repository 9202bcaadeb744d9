/** A fan-out and clients on 127.0.0.1 that are closed after each test. */
import { Encoder } from '../../ts/codec';
import { connect, type TcpClient, type TcpClientOptions } from '../../ts/clients/tcp';
import { TcpFanout, type TcpFanoutOptions } from '../../ts/transports/tcp';
import { assetSpecs } from './stream';

export type Defer = (cleanup: () => unknown) => void;

/** Registers an afterEach that runs the deferred cleanups, last first. */
export function useCleanups(): Defer {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return (c) => cleanups.push(c);
}

export async function startFanout(
  defer: Defer,
  wire: 'v1' | 'v2',
  opts: Partial<TcpFanoutOptions> = {},
): Promise<{ fanout: TcpFanout; encoder: Encoder; port: number }> {
  const encoder = new Encoder({ wire, assets: assetSpecs(), refTime: 1_723_100_000_000 });
  const fanout = new TcpFanout({ host: '127.0.0.1', port: 0, heartbeatMs: 0, encoder, ...opts });
  defer(() => fanout.close());
  const { port } = await fanout.listen();
  return { fanout, encoder, port };
}

/** A library client with short reconnect delays. */
export function startClient(defer: Defer, port: number, opts: TcpClientOptions = {}): TcpClient {
  const c = connect({ host: '127.0.0.1', port, retryMinMs: 20, retryMaxMs: 100, ...opts });
  defer(() => c.close());
  return c;
}

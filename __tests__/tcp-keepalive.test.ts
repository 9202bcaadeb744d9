/**
 * Half-open peers: the fan-out sets TCP keepalive timing (idle, probe interval, probe count) and
 * TCP_USER_TIMEOUT on every accepted socket, read back from the kernel through the library.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { setSocketKeepalive, socketKeepalive, TcpFanout } from '../ts/index';
import { startClient, startFanout, useCleanups } from './helpers/fanout';
import { makeTrades, until } from './helpers/stream';

const defer = useCleanups();
const linux = process.platform === 'linux';

/** A connected pair on 127.0.0.1: the accepted (server-side) socket and the client. */
async function pair(): Promise<{ accepted: net.Socket; client: net.Socket }> {
  const server = net.createServer();
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const s = await accepted;
  defer(() => {
    s.destroy();
    client.destroy();
    server.close();
  });
  return { accepted: s, client };
}

/** The fd of this process's socket from local port `local` to remote port `remote` (IPv4), via /proc. */
function fdOfConnection(local: number, remote: number): number {
  const hex = (p: number): string => p.toString(16).toUpperCase().padStart(4, '0');
  const row = fs
    .readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[1]?.endsWith(`:${hex(local)}`) && f[2]?.endsWith(`:${hex(remote)}`));
  if (!row) throw new Error(`no socket ${local} -> ${remote} in /proc/net/tcp`);
  const link = `socket:[${row[9]}]`;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === link) return Number(fd);
    } catch {
      // the fd of readdir itself is gone by now
    }
  }
  throw new Error(`socket inode ${row[9]} is not one of this process's fds`);
}

(linux ? describe : describe.skip)('TCP keepalive timing (Linux)', () => {
  it('sets idle, interval, count and the user timeout on a socket, as the kernel reports them', async () => {
    const { accepted } = await pair();
    const before = socketKeepalive(accepted);
    const set = setSocketKeepalive(accepted, { idleMs: 2500, intervalMs: 2000, probes: 4 });
    const want = { enabled: true, idleSecs: 3, intervalSecs: 2, count: 4, userTimeoutMs: 11_000 };
    expect(set).toEqual(want);
    expect(socketKeepalive(accepted)).toEqual(want);
    expect(before).not.toEqual(want);
  });

  it('the fan-out applies its configured timing to every accepted client socket', async () => {
    const { port } = await startFanout(defer, 'v2', { keepAliveMs: 4000, keepAliveIntervalMs: 1000, keepAliveProbes: 2 });
    const clients = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<net.Socket>((resolve) => {
            const c = net.connect(port, '127.0.0.1', () => resolve(c));
            defer(() => c.destroy());
          }),
      ),
    );
    // The server side of each connection is a socket of this process (the fan-out runs here).
    await new Promise((r) => setTimeout(r, 50));
    for (const c of clients) {
      const fd = fdOfConnection(port, c.localPort as number);
      expect(socketKeepalive(fd)).toEqual({ enabled: true, idleSecs: 4, intervalSecs: 1, count: 2, userTimeoutMs: 6000 });
    }
  });

  it('defaults: 10 s idle, then 3 probes 1 s apart, and a user timeout of 13 s', async () => {
    const { port } = await startFanout(defer, 'v2');
    const c = await new Promise<net.Socket>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s));
      defer(() => s.destroy());
    });
    await new Promise((r) => setTimeout(r, 50));
    const fd = fdOfConnection(port, c.localPort as number);
    expect(socketKeepalive(fd)).toEqual({ enabled: true, idleSecs: 10, intervalSecs: 1, count: 3, userTimeoutMs: 13_000 });
  });

  it('the library client sets the same default timing on its own socket', async () => {
    const server = net.createServer();
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const client = startClient(defer, port, { reconnect: false });
    const s = await accepted;
    defer(() => {
      s.destroy();
      server.close();
    });
    await until(() => {
      try {
        return socketKeepalive(fdOfConnection(s.remotePort as number, port)).count === 3;
      } catch {
        return false;
      }
    }, 'the client socket keepalive timing', 2000);
    expect(socketKeepalive(fdOfConnection(s.remotePort as number, port))).toEqual({
      enabled: true,
      idleSecs: 10,
      intervalSecs: 1,
      count: 3,
      userTimeoutMs: 13_000,
    });
    client.close();
  });

  it('a closed socket or a bad fd is a clear error with a code', async () => {
    const { accepted } = await pair();
    accepted.destroy();
    expect(() => socketKeepalive(accepted)).toThrow(expect.objectContaining({ code: 'E_NO_FD' }));
    expect(() => socketKeepalive(1_000_000)).toThrow(expect.objectContaining({ code: 'E_PIDFD' }));
  });
});

describe('keepalive options', () => {
  it('rejects non-positive or fractional timings with E_USAGE', async () => {
    const encoder = { join: () => ({}), heartbeat: () => null } as never;
    for (const bad of [{ keepAliveMs: 0 }, { keepAliveIntervalMs: -1 }, { keepAliveProbes: 1.5 }]) {
      expect(() => new TcpFanout({ port: 0, encoder, ...bad })).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
    }
    const { accepted } = await pair();
    expect(() => setSocketKeepalive(accepted, { probes: 0 })).toThrow(expect.objectContaining({ code: 'E_USAGE' }));
  });
});

/**
 * A peer that vanishes without a FIN: a Python client reads the handshake, then attaches a socket
 * filter that drops every segment the server sends it (no ACK of probes or data, as if the host or
 * the network had gone), and stays silent. Needs python3 (as the shm layout test).
 */
const VANISHING_PEER = `
import socket, struct, ctypes, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
got = b''
while len(got) < 9 + 4 or len(got) < 9 + 4 + struct.unpack_from('<I', got, 9)[0]:
    got += s.recv(65536)
prog = ctypes.create_string_buffer(struct.pack('HBBI', 0x06, 0, 0, 0))  # BPF: ret 0 (drop)
s.setsockopt(socket.SOL_SOCKET, 26, struct.pack('HL', 1, ctypes.addressof(prog)))  # SO_ATTACH_FILTER
print('vanished', flush=True)
time.sleep(60)
`;

(linux ? describe : describe.skip)('half-open peers are reaped', () => {
  it.each([
    ['a quiet connection, by keepalive probes', false],
    ['a connection with data in flight, by the user timeout', true],
  ])('%s, within idle + probes x interval', async (_what, busy) => {
    const { fanout, encoder, port } = await startFanout(defer, 'v2', { keepAliveMs: 1000, keepAliveIntervalMs: 1000, keepAliveProbes: 2 });
    const peer = spawn('python3', ['-c', VANISHING_PEER, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    defer(() => peer.kill('SIGKILL'));
    await new Promise<void>((resolve, reject) => {
      peer.stdout.on('data', (d: Buffer) => d.toString().includes('vanished') && resolve());
      peer.once('exit', (code) => reject(new Error(`python3 peer exited (${code}) before vanishing`)));
    });
    const t0 = Date.now();
    const gone = new Promise<number>((r) => fanout.once('disconnect', () => r(Date.now() - t0)));
    const trades = makeTrades(200, 5);
    let k = 0;
    const feed = busy ? setInterval(() => fanout.publish(encoder.encodeBatch(trades.slice(k, (k += 10)))), 100) : undefined;
    defer(() => clearInterval(feed));
    const ms = await Promise.race([gone, new Promise<number>((r) => setTimeout(() => r(-1), 9000))]);
    // 1 s idle + 2 probes x 1 s = 3 s (the user timeout, for unacknowledged data); the system's
    // default probes (75 s x 9) would keep it for minutes.
    expect(ms).toBeGreaterThan(busy ? 2000 : 2500);
    expect(ms).toBeLessThan(6000);
    expect(fanout.stats().clients).toBe(0);
  }, 15_000);
});

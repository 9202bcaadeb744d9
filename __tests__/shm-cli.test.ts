/** `perp-signal shm-producer` and `shm-consumer` as real child processes. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const bin = path.join(__dirname, '..', 'bin', 'perp-signal.js');
const children: ChildProcess[] = [];
const names: string[] = [];

function qname(tag: string): string {
  const n = `ps-jest-cli-${tag}-${process.pid}`;
  names.push(n);
  return n;
}

function run(args: string[], timeout = 20000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Resolves on 'close' (not 'exit'), so everything the child wrote to stderr has been read. */
function exited(c: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if ((c.exitCode !== null || c.signalCode !== null) && c.stderr?.readableEnded !== false) resolve(c.exitCode);
    else c.once('close', (code) => resolve(code));
  });
}

async function waitFor(file: string, ms = 15000): Promise<void> {
  const until = Date.now() + ms;
  while (!fs.existsSync(file)) {
    if (Date.now() > until) throw new Error(`${file} did not appear`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await exited(c);
  }
  for (const n of names.splice(0)) fs.rmSync(`/dev/shm/${n}`, { force: true });
});

describe.each(['v2', 'v1'])('shm-producer | shm-consumer --json (wire %s)', (wire) => {
  it('prints one JSON line per trade like tcp-client, and the producer cleans up on SIGTERM', async () => {
    const name = qname(`pipe-${wire}`);
    const producer = spawn(process.execPath, [bin, 'shm-producer', '--name', name, '--rate', '5000', '--wire', wire], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(producer);
    let perr = '';
    producer.stderr?.on('data', (d: Buffer) => (perr += d.toString()));
    await waitFor(`/dev/shm/${name}`);
    const r = run(['shm-consumer', '--name', name, '--json', '--count', '300']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ event: 'resync' });
    const tradesOut = lines.filter((l) => !('event' in l));
    expect(tradesOut).toHaveLength(300);
    const lastId: Record<string, number> = {};
    for (const t of tradesOut) {
      expect(['BTCUSDT', 'ETHUSDT']).toContain(t.symbol);
      expect(typeof t.time).toBe('number');
      expect(t.price).toMatch(/^\d+(\.\d+)?$/);
      expect(t.qty).toMatch(/^\d+(\.\d+)?$/);
      expect(typeof t.maker).toBe('boolean');
      if (wire === 'v2') {
        const s = t.symbol as string;
        if (lastId[s] !== undefined) expect(t.tradeId).toBe(lastId[s] + 1);
        lastId[s] = t.tradeId as number;
      } else expect(t.tradeId).toBeUndefined();
    }
    producer.kill('SIGTERM');
    expect(await exited(producer)).toBe(0);
    expect(perr).toMatch(/published \d+ frames, dropped \d+/);
    expect(fs.existsSync(`/dev/shm/${name}`)).toBe(false);
  });
});

describe('shm commands: bad input', () => {
  it('exits 2 with a clear message on a bad name, a bad capacity or a live producer', async () => {
    let r = run(['shm-producer', '--name', 'a/b', '--count', '1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/bad queue name "a\/b": it contains '\/'/);
    r = run(['shm-producer', '--name', qname('cap'), '--capacity', '5000', '--count', '1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/power of two/);

    const name = qname('busy');
    const producer = spawn(process.execPath, [bin, 'shm-producer', '--name', name, '--rate', '10'], { stdio: 'ignore' });
    children.push(producer);
    await waitFor(`/dev/shm/${name}`);
    r = run(['shm-producer', '--name', name, '--count', '1']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`live producer (pid ${producer.pid})`);

    r = run(['shm-consumer', '--name', qname('none')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no queue at \/dev\/shm\/.*start the producer first/);
  });
});

/**
 * The /dev/shm ring from Node: real files in /dev/shm, producers in child processes where the
 * behaviour is about processes (liveness, stale files, restarts).
 */
import { type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PerpSignalError, ShmConsumer, ShmPublisher } from '../ts/index';
import type { ShmDecodeEvent } from '../ts/clients/shm';
import { ShmScene, exited, take } from './shm.helpers';

const root = path.join(__dirname, '..');
const scene = new ShmScene('ps-jest');
const qname = (tag: string): string => scene.qname(tag);
const track = <T extends { close(): unknown }>(x: T): T => scene.track(x);
function framed(...msgs: (string | Buffer)[]): Buffer {
  return Buffer.concat(
    msgs.flatMap((m) => {
      const b = Buffer.from(m);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      return [len, b];
    }),
  );
}
function codeOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PerpSignalError);
    return e as PerpSignalError;
  }
  throw new Error('expected a throw');
}

/** A producer in its own process: creates the queue, pushes `first`, then idles until killed. */
function childProducer(name: string, first: string): Promise<ChildProcess> {
  const script = `
    const { ShmPublisher } = require(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
    const p = ShmPublisher.create({ name: ${JSON.stringify(name)}, capacity: 4096 });
    p.push(Buffer.from(${JSON.stringify(first)}));
    process.on('SIGTERM', () => { p.close(); process.exit(0); });
    setInterval(() => {}, 1000);
    process.stdout.write('ready\\n');
  `;
  return scene.node(script, 'child producer');
}

afterEach(() => scene.cleanup());

describe('shm ring from Node', () => {
  it('delivers framed batches record by record, through pop() and allocation-free popInto()', () => {
    const name = qname('basic');
    const pub = track(ShmPublisher.create({ name, capacity: 4096 }));
    expect(fs.statSync(`/dev/shm/${name}`).mode & 0o777).toBe(0o600);
    const con = track(ShmConsumer.open(name));
    expect(con.pop()).toBeNull();
    expect(pub.publish(framed('START', '', 'abc'))).toBe(0);
    expect(pub.consumers()).toBe(1);
    expect(con.pop()).toEqual(Buffer.from('START'));
    expect(con.pop()).toEqual(Buffer.alloc(0));
    const buf = Buffer.alloc(2);
    const err = codeOf(() => con.popInto(buf));
    expect(err.code).toBe('E_BUFFER_TOO_SMALL');
    expect(err.message).toMatch(/at least 3 bytes/);
    const big = Buffer.alloc(16);
    expect(con.popInto(big)).toBe(3);
    expect(big.subarray(0, 3).toString()).toBe('abc');
    expect(con.popInto(big)).toBe(-1);
    expect(con.lastSeq()).toBe(2);
    expect(pub.stats()).toMatchObject({ pushed: 3, dropped: 0 });
    expect(codeOf(() => pub.publish(Buffer.from([9, 0, 0, 0, 1]))).code).toBe('E_BAD_FRAME');
    expect(codeOf(() => pub.setHeader(Buffer.alloc(20000))).code).toBe('E_HEADER_TOO_LARGE');
    con.close();
    expect(pub.consumers()).toBe(0);
  });

  it('drops when full without blocking, counts it, and the consumer learns the exact loss', () => {
    const name = qname('full');
    const pub = track(ShmPublisher.create({ name, capacity: 4096 }));
    const con = track(ShmConsumer.open(name));
    const lost: number[] = [];
    con.on('lost', (e: { missing: number }) => lost.push(e.missing));
    const msg = Buffer.alloc(56, 1); // 64-byte records: 63 fit (the word after the last stays free)
    let dropped = 0;
    for (let i = 0; i < 100; i++) dropped += pub.publish(framed(msg));
    expect(dropped).toBe(37);
    expect(pub.drops()).toBe(37);
    let n = 0;
    while (con.pop()) n++;
    expect(n).toBe(63);
    pub.push(Buffer.from('next'));
    expect(con.pop()).toEqual(Buffer.from('next'));
    expect(lost).toEqual([37]);
    expect(con.stats()).toMatchObject({ lost: 37, producerDropped: 37 });
  });

  it('rejects bad names and capacities with errors that say what to do', () => {
    for (const bad of ['', 'a/b', '..', '../etc', '.hidden', 'a b']) {
      const e = codeOf(() => ShmPublisher.create({ name: bad, capacity: 4096 }));
      expect(e.code).toBe('E_BAD_NAME');
      expect(e.message).toMatch(/A-Z a-z 0-9/);
    }
    const name = qname('cap');
    for (const cap of [0, 1000, 2048, 4095, 6000, 1.5, -4096]) {
      const e = codeOf(() => ShmPublisher.create({ name, capacity: cap }));
      expect(e.code).toBe('E_BAD_CAPACITY');
      expect(e.message).toMatch(/power of two/);
    }
    expect(fs.existsSync(`/dev/shm/${name}`)).toBe(false);
    const e = codeOf(() => ShmConsumer.open(name));
    expect(e.code).toBe('E_NO_QUEUE');
    expect(e.message).toMatch(/start the producer first/);
  });

  it('never follows a symlink in /dev/shm', () => {
    const name = qname('link');
    const target = path.join('/dev/shm', qname('target'));
    fs.writeFileSync(target, 'precious');
    fs.symlinkSync(target, `/dev/shm/${name}`);
    expect(codeOf(() => ShmPublisher.create({ name, capacity: 4096 })).code).toBe('E_NOT_A_QUEUE');
    expect(codeOf(() => ShmConsumer.open(name)).code).toBe('E_NOT_A_QUEUE');
    expect(fs.readFileSync(target, 'utf8')).toBe('precious');
    expect(fs.lstatSync(`/dev/shm/${name}`).isSymbolicLink()).toBe(true);
  });

  it('never takes over an empty or all-zero file it cannot prove is a queue, and leaves it as it was', () => {
    // Another program may own such a file; this producer never leaves one (it names a queue only
    // once the file is sized and its layout written), so the file is refused with how to remove it.
    for (const [tag, bytes] of [['empty', 0], ['zeros', 4096 + 16384 + 4096]] as const) {
      const name = qname(tag);
      const file = `/dev/shm/${name}`;
      fs.writeFileSync(file, Buffer.alloc(bytes));
      const e = codeOf(() => ShmPublisher.create({ name, capacity: 4096 }));
      expect(e.code).toBe('E_NOT_A_QUEUE');
      expect(e.message).toContain(file);
      expect(e.message).toMatch(bytes === 0 ? /it is empty/ : /not PERPRING/);
      expect(e.message).toMatch(/remove it by hand/);
      expect(fs.statSync(file).size).toBe(bytes);
      expect(fs.readFileSync(file).every((b) => b === 0)).toBe(true);
    }
  });

  it('never shows a half-made queue under its name, and leaves no temporary file behind', () => {
    const name = qname('fresh');
    const pub = track(ShmPublisher.create({ name, capacity: 4096 }));
    expect(fs.readFileSync(`/dev/shm/${name}`).subarray(0, 8).toString('latin1')).toBe('PERPRING');
    expect(fs.readdirSync('/dev/shm').filter((f) => f.includes(name) && f !== name)).toEqual([]);
    pub.close();
    expect(fs.existsSync(`/dev/shm/${name}`)).toBe(false);
  });

  it("removes a dead producer's stale temporary file of the queue, never a young one or another queue's", () => {
    const name = qname('temps');
    const temp = (n: string, pid: number): string => `/dev/shm/.${n}.${pid}.new`;
    const old = [temp(name, 2 ** 22 + 1)];
    const kept = [temp(name, 2 ** 22 + 2), temp(`${name}.9`, 2 ** 22 + 3), `/dev/shm/.${name}.x.new`];
    try {
      for (const f of [...old, ...kept]) fs.writeFileSync(f, Buffer.alloc(4096));
      const longAgo = new Date(Date.now() - 60_000);
      for (const f of [old[0], kept[1], kept[2]]) fs.utimesSync(f, longAgo, longAgo);
      track(ShmPublisher.create({ name, capacity: 4096 }));
      expect(old.filter((f) => fs.existsSync(f))).toEqual([]);
      expect(kept.filter((f) => fs.existsSync(f))).toEqual(kept);
    } finally {
      for (const f of [...old, ...kept]) fs.rmSync(f, { force: true });
    }
  });

  it('refuses a live producer, replaces a dead one, and the attached consumer follows the new epoch', async () => {
    const name = qname('live');
    const child = await childProducer(name, 'from-child');
    const busy = codeOf(() => ShmPublisher.create({ name, capacity: 4096 }));
    expect(busy.code).toBe('E_QUEUE_BUSY');
    expect(busy.message).toContain(`pid ${child.pid}`);
    expect(busy.message).toMatch(/stop it first/);
    const con = track(ShmConsumer.open(name));
    expect(codeOf(() => ShmConsumer.open(name)).code).toBe('E_QUEUE_BUSY');
    expect(con.pop()).toEqual(Buffer.from('from-child'));
    const epochBefore = con.stats().epoch;
    expect(con.stats().producerPid).toBe(child.pid);
    expect(con.producerAlive()).toBe(true);

    child.kill('SIGKILL');
    await exited(child);
    expect(fs.existsSync(`/dev/shm/${name}`)).toBe(true); // a crash leaves the file behind
    expect(con.producerAlive()).toBe(false);
    const pub = track(ShmPublisher.create({ name, capacity: 4096 }));
    const epochs: bigint[] = [];
    con.on('epoch', (e: { epoch: bigint }) => epochs.push(e.epoch));
    pub.push(Buffer.from('after-restart'));
    expect(con.pop()).toEqual(Buffer.from('after-restart'));
    expect(epochs).toEqual([pub.stats().epoch]);
    expect(epochs[0]).not.toBe(epochBefore);
  });

  it('removes the file on clean shutdown unless keep; the consumer drains, then sees closed', async () => {
    const name = qname('close');
    const child = await childProducer(name, 'last words');
    const con = track(ShmConsumer.open(name));
    child.kill('SIGTERM');
    await exited(child);
    expect(fs.existsSync(`/dev/shm/${name}`)).toBe(false);
    const got = await take(con.messages({ follow: false }), 3);
    expect(got).toEqual([{ kind: 'record', seq: 0, payload: Buffer.from('last words') }, { kind: 'closed' }]);

    const kept = qname('keep');
    const pub = ShmPublisher.create({ name: kept, capacity: 4096, keep: true });
    await pub.close();
    expect(fs.existsSync(`/dev/shm/${kept}`)).toBe(true);
  });

  it('waits without blocking the event loop, and a follower reattaches to a new producer', async () => {
    const name = qname('wait');
    const pub = ShmPublisher.create({ name, capacity: 4096 });
    const con = track(ShmConsumer.open(name));
    let ticks = 0;
    const tick = setInterval(() => ticks++, 5);
    const it = con.messages({ spinPolls: 100, yieldPolls: 10, sleepMs: 1 });
    setTimeout(() => pub.push(Buffer.from('late')), 60);
    const [first] = await take(it, 1);
    expect(first).toEqual({ kind: 'record', seq: 0, payload: Buffer.from('late') });
    expect(ticks).toBeGreaterThan(3);
    await pub.close();
    const pub2 = track(ShmPublisher.create({ name, capacity: 8192 }));
    setTimeout(() => pub2.push(Buffer.from('new producer')), 30);
    const rest = await take(it, 3);
    clearInterval(tick);
    expect(rest).toEqual([
      { kind: 'closed' },
      { kind: 'reopened' },
      { kind: 'record', seq: 0, payload: Buffer.from('new producer') },
    ]);
  });

  it('stops an iterator on abort', async () => {
    const name = qname('abort');
    track(ShmPublisher.create({ name, capacity: 4096 }));
    const con = track(ShmConsumer.open(name));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    const got = await take(con.records({ signal: ac.signal }), 1);
    expect(got).toEqual([]);
  });
});

/**
 * A toy delta codec (each record holds an increment; the header copy holds the running total)
 * stands in for the wire codec, so the resync rules are tested on their own: after any loss the
 * consumer must restart from a header copy and then be exact again.
 */
describe('resync from the header copy', () => {
  it('a paused consumer is overrun, resyncs, and then decodes every later value exactly', async () => {
    const name = qname('resync');
    let total = 0;
    const stateOf = (): Buffer => {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(total);
      return b;
    };
    const pub = track(ShmPublisher.create({ name, capacity: 4096, headerSource: () => stateOf() }));
    pub.setHeader(stateOf());
    const send = (from: number, to: number): void => {
      for (let i = from; i < to; i++) {
        total += i;
        const b = Buffer.alloc(16);
        b.writeUInt32LE(i, 0); // increment
        b.writeDoubleLE(total, 8); // the truth, to check the decoder against
        pub.publish(framed(b));
      }
    };
    const con = track(ShmConsumer.open(name));
    const it = con.decodeWith(
      ({ header }) => {
        let sum = header.readDoubleLE(0);
        return (p: Buffer) => {
          sum += p.readUInt32LE(0);
          return { sum, truth: p.readDoubleLE(8) };
        };
      },
      { spinPolls: 10, yieldPolls: 5, sleepMs: 1 },
    );
    send(1, 11);
    const head = await take(it, 11);
    expect(head[0]).toEqual({ kind: 'resync', seq: 0, skipped: 0 });
    for (const v of head.slice(1)) expect((v as { sum: number; truth: number }).sum).toBe((v as { truth: number }).truth);

    // The consumer pauses while 1000 records arrive: 16-byte payloads take one 64-byte line each,
    // 63 fit in the 4 KiB ring (one header word of slack) less what the consumer read but has
    // not released yet (it stores its read cursor every 256 bytes here), the rest drop.
    send(11, 1011);
    expect(pub.stats().dropped).toBeGreaterThan(0);
    const events: ShmDecodeEvent[] = [];
    let exact = 0;
    let afterResync = 0;
    let resynced = false;
    // Keep publishing so the producer answers the consumer's header request.
    const feeder = setInterval(() => send(2000 + afterResync, 2001 + afterResync), 2);
    try {
      for (let i = 0; i < 400 && afterResync < 20; i++) {
        const [v] = await take(it, 1);
        if ('kind' in v) {
          events.push(v);
          if (v.kind === 'resync') resynced = true;
        } else if (resynced) {
          expect(v.sum).toBe(v.truth);
          afterResync++;
        } else if (v.sum === v.truth) exact++;
      }
    } finally {
      clearInterval(feeder);
    }
    expect(exact).toBeGreaterThanOrEqual(60);
    expect(exact).toBeLessThanOrEqual(63);
    expect(afterResync).toBe(20);
    const kinds = events.map((e) => e.kind);
    expect(kinds).toEqual(['lost', 'resync']);
    const lost = events[0] as { missing: number; scope: string };
    expect(lost.scope).toBe('ring');
    const resync = events[1] as { seq: number; skipped: number };
    // Every message is accounted for: decoded, dropped (gap) or skipped to reach the header.
    expect(11 + exact + lost.missing + resync.skipped).toBe(resync.seq + 1);
    expect(lost.missing).toBe(pub.stats().dropped);
  });
});

/**
 * The Node consumer's JS fast path (records read from the shared mapping in JS, no N-API call per
 * record) through the public ShmConsumer API: real /dev/shm files, producers in child processes
 * where the behaviour is about processes. Every test checks exact bytes against the message
 * number and that the fast path really did the popping (stats().jsFastPathPopped).
 */
import { type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { ShmConsumer, ShmPublisher } from '../ts/index';
import type { ShmEvent, ShmRecord } from '../ts/clients/shm';
import { ShmScene, exited, take as takeWithin } from './shm.helpers';

const root = path.join(__dirname, '..');
const scene = new ShmScene('ps-jest-fast');
const qname = (tag: string): string => scene.qname(tag);
const track = <T extends { close(): unknown }>(x: T): T => scene.track(x);
const take = <T>(it: AsyncIterableIterator<T>, n: number): Promise<T[]> => takeWithin(it, n, 15000);

/**
 * Message `i` of a run tagged `tag`: 0 to 300 bytes (so records of every alignment wrap at every
 * offset of a small ring), every byte a function of (tag, i). Children get its source.
 */
function message(tag: number, i: number): Buffer {
  const len = (i * 37) % 301;
  const b = Buffer.alloc(len);
  for (let k = 0; k < len; k++) b[k] = (i * 131 + k * 7 + tag * 29) & 0xff;
  if (len >= 4) b.writeUInt32LE(i, 0);
  return b;
}

/**
 * A producer process: creates the ring, waits for a consumer, pushes messages 0..count-1 of run
 * `tag`, `chunk` at a time between event-loop turns, then after a pause message `count` as an
 * end marker (so a loss at the very end still shows), and idles until killed.
 */
function childProducer(name: string, tag: number, count: number, chunk: number, capacity: number): Promise<ChildProcess> {
  const script = `
    const { ShmPublisher } = require(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
    const message = ${message.toString()};
    const p = ShmPublisher.create({ name: ${JSON.stringify(name)}, capacity: ${capacity} });
    process.stdout.write('ready\\n');
    let i = 0;
    const pushSome = () => {
      for (const end = Math.min(${count}, i + ${chunk}); i < end; i++) p.push(message(${tag}, i));
      if (i < ${count}) setImmediate(pushSome);
      else setTimeout(() => p.push(message(${tag}, ${count})), 100);
    };
    const wait = setInterval(() => { if (p.consumers() > 0) { clearInterval(wait); pushSome(); } }, 2);
    process.on('SIGTERM', () => { p.close(); process.exit(0); });
    setInterval(() => {}, 1000);
  `;
  return scene.node(script, 'child producer');
}

afterEach(() => scene.cleanup());

describe('shm consumer JS fast path', () => {
  it('pop(), popInto() and records() give exact payloads across hundreds of wrap-arounds', async () => {
    const name = qname('wrap');
    const pub = track(ShmPublisher.create({ name, capacity: 4096 }));
    const con = track(ShmConsumer.open(name));
    const buf = Buffer.alloc(512);
    const it = con.records({ spinPolls: 0 });
    let next = 0;
    // 12,000 records of 0-300 bytes through a 4 KiB ring: it wraps ~500 times; the three ways
    // of reading take turns so each picks up where another left off.
    let wrong = 0;
    while (next < 12000) {
      const batch = Math.min(1 + (next % 11), 12000 - next);
      for (let k = 0; k < batch; k++) expect(pub.push(message(1, next + k))).toBe(true);
      for (let k = 0; k < batch; k++, next++) {
        const want = message(1, next);
        const way = next % 3;
        let got: Buffer | null | undefined;
        if (way === 0) got = con.pop();
        else if (way === 1) got = buf.subarray(0, Math.max(0, con.popInto(buf)));
        else got = (await it.next()).value as Buffer;
        if (!got?.equals(want) || con.lastSeq() !== next) wrong++;
      }
    }
    expect(wrong).toBe(0);
    expect(con.pop()).toBeNull();
    expect(con.popInto(buf)).toBe(-1);
    const s = con.stats();
    expect(s).toMatchObject({ popped: 12000, lost: 0, backlog: 0, producerPushed: 12000 });
    // Only the first record after attaching needs the native consumer.
    expect(s.jsFastPathPopped).toBe(11999);
  });

  it('a record too big for popInto\'s buffer stays in place and says so; a bigger buffer gets it', () => {
    const name = qname('big');
    const pub = track(ShmPublisher.create({ name, capacity: 4096 }));
    const con = track(ShmConsumer.open(name));
    pub.push(Buffer.from('first'));
    expect(con.pop()).toEqual(Buffer.from('first'));
    const big = Buffer.alloc(1000, 7);
    pub.push(big);
    expect(() => con.popInto(Buffer.alloc(100))).toThrow(expect.objectContaining({ code: 'E_BUFFER_TOO_SMALL' }));
    const out = Buffer.alloc(1000);
    expect(con.popInto(out)).toBe(1000);
    expect(out).toEqual(big);
    expect(con.stats()).toMatchObject({ popped: 2, lost: 0 });
  });

  it('overrun: the loss is reported at its exact place and every later record is exact', () => {
    const name = qname('overrun');
    const pub = track(ShmPublisher.create({ name, capacity: 4096 }));
    const con = track(ShmConsumer.open(name));
    const lost: number[] = [];
    con.on('lost', (e: { missing: number }) => lost.push(e.missing));
    // Same-size messages, so once the ring is full every later one is dropped.
    const msg = (i: number): Buffer => Buffer.concat([message(2, i * 301 + 24).subarray(0, 20), Buffer.from([i & 0xff])]);
    pub.push(msg(0));
    expect(con.pop()).toEqual(msg(0)); // the fast path is now in charge
    // The consumer pauses while 300 messages arrive: the ring holds only the first ~130.
    let stored = 0;
    for (let i = 1; i <= 300; i++) if (pub.push(msg(i))) stored = i;
    const dropped = 300 - stored;
    expect(dropped).toBeGreaterThan(100);
    expect(pub.stats().dropped).toBe(dropped);
    let wrong = 0;
    for (let i = 1; i <= stored; i++) if (!con.pop()?.equals(msg(i))) wrong++;
    expect(wrong).toBe(0);
    expect(lost).toEqual([]);
    expect(con.pop()).toBeNull(); // the loss is not known before a record after it arrives
    for (let i = 301; i <= 360; i++) pub.push(msg(i));
    const buf = Buffer.alloc(512);
    const n = con.popInto(buf); // the gap is seen right before message 301
    expect(lost).toEqual([dropped]);
    expect(buf.subarray(0, n)).toEqual(msg(301));
    expect(con.lastSeq()).toBe(301);
    for (let i = 302; i <= 360; i++) if (!con.pop()?.equals(msg(i)) || con.lastSeq() !== i) wrong++;
    expect(wrong).toBe(0);
    const s = con.stats();
    expect(s).toMatchObject({ popped: stored + 61, lost: dropped, producerDropped: dropped });
    // All but the first record and the one right after the gap.
    expect(s.jsFastPathPopped).toBe(stored + 59);
  });

  it('overrun of a decoding consumer: lost, then resync from the header copy, then exact values', async () => {
    const name = qname('resync');
    let nextToSend = 0;
    // A delta stream in miniature: each payload is the next number, the header copy says which
    // number comes next, and the decoder refuses anything but that.
    const pub = track(ShmPublisher.create({ name, capacity: 4096, headerSource: () => Buffer.from(String(nextToSend)) }));
    pub.setHeader(Buffer.from('0'));
    const con = track(ShmConsumer.open(name));
    const it = con.decodeWith((h) => {
      let expect = Number(h.header.toString());
      return (p: Buffer) => {
        const n = Number(p.toString());
        if (n !== expect) throw new Error(`got ${n}, expected ${expect}`);
        expect++;
        return n;
      };
    }, { spinPolls: 0 });
    const send = (to: number): void => {
      for (; nextToSend < to; ) pub.publish(framedOne(String(nextToSend++)));
    };
    send(20);
    expect(await take(it, 21)).toEqual([{ kind: 'resync', seq: 0, skipped: 0 }, ...Array.from({ length: 20 }, (_, i) => i)]);
    send(2000); // the consumer is paused: the ring keeps the oldest 63 (one line each), the rest is dropped
    const dropped = pub.stats().dropped;
    expect(dropped).toBeGreaterThan(1000);
    const kept = 2000 - 20 - dropped;
    expect(await take(it, kept)).toEqual(Array.from({ length: kept }, (_, i) => 20 + i));
    send(2001); // a record after the gap: now the consumer can tell
    expect(await take(it, 1)).toEqual([{ kind: 'lost', scope: 'ring', missing: dropped }]);
    const resumed = take(it, 50); // it asks for a header copy, then waits
    await new Promise((r) => setTimeout(r, 50));
    send(2051); // the first publish answers the request: the copy holds for 2002
    const after = await resumed;
    expect(after[0]).toEqual({ kind: 'resync', seq: 2002, skipped: 2 });
    // A thousand more, in steps that fit the ring (63 records) so none is dropped.
    for (let k = 0; k < 21; k++) {
      const more = take(it, 50);
      send(2101 + 50 * k);
      after.push(...(await more));
    }
    expect(after.slice(1)).toEqual(Array.from({ length: 1099 }, (_, i) => 2002 + i));
    expect(con.stats().jsFastPathPopped).toBeGreaterThan(600);
  });

  it('producer restart (epoch) mid-stream: the consumer follows and every record is exact', async () => {
    const name = qname('epoch');
    // A 1 MiB ring holds all 2001 messages of a run (up to 308 bytes each): nothing is dropped.
    const first = await childProducer(name, 3, 2000, 50, 1 << 20);
    const con = track(ShmConsumer.open(name));
    const it = con.messages({ spinPolls: 1000 });
    const got = await take(it, 2001);
    expect(got.filter((m, i) => !isRecord(m, 3, i))).toEqual([]);
    first.kill('SIGKILL');
    await exited(first);
    // A new producer takes over the dead one's file in place; the attached consumer follows.
    await childProducer(name, 4, 3000, 50, 1 << 20);
    const next = (await take(it, 3002)) as (ShmRecord | ShmEvent)[];
    expect(next[0]).toMatchObject({ kind: 'epoch' });
    expect(next.slice(1).filter((m, i) => !isRecord(m, 4, i))).toEqual([]);
    expect(con.stats().jsFastPathPopped).toBeGreaterThan(4990);
  });

  it('many messages from a producer process, read while it writes: every record exact, every loss counted', async () => {
    const name = qname('many');
    const total = 200000;
    await childProducer(name, 5, total, 100, 1 << 20);
    const con = track(ShmConsumer.open(name));
    let lost = 0;
    con.on('lost', (e: { missing: number }) => (lost += e.missing));
    const buf = Buffer.alloc(512);
    const deadline = Date.now() + 30000;
    let received = 0;
    let wrong = 0;
    // A synchronous polling loop, as a strategy would run it, yielding when the ring is empty.
    for (let last = -1; last < total && Date.now() < deadline; ) {
      const n = con.popInto(buf, 10000);
      if (n < 0) {
        await new Promise((r) => setImmediate(r));
        continue;
      }
      last = con.lastSeq();
      if (!buf.subarray(0, n).equals(message(5, last))) wrong++;
      received++;
    }
    expect({ wrong, accounted: received + lost }).toEqual({ wrong: 0, accounted: total + 1 });
    const s = con.stats();
    expect(s).toMatchObject({ popped: received, lost, producerDropped: lost });
    expect(received).toBeGreaterThan(total / 10); // most, unless this machine is very busy
    // Natively popped: the first record, and the one after each gap.
    expect(s.jsFastPathPopped).toBeGreaterThanOrEqual(received - 1 - lost);
  });

  it('close() while popped Buffers and the mapping are still referenced: no crash, data intact, lock released', async () => {
    const name = qname('close');
    const pub = track(ShmPublisher.create({ name, capacity: 65536 }));
    const con = ShmConsumer.open(name);
    for (let i = 0; i < 50; i++) pub.push(message(6, i));
    const kept: Buffer[] = [];
    for (let i = 0; i < 25; i++) kept.push(con.pop() as Buffer);
    const it = con.records({ spinPolls: 0 });
    kept.push((await it.next()).value as Buffer);
    con.close();
    // Another consumer can attach right away: the lock went with close(), not with the GC.
    const con2 = track(ShmConsumer.open(name));
    for (let i = 26; i < 50; i++) expect(con2.pop()).toEqual(message(6, i));
    con2.close();
    await pub.close(); // the file is gone too
    expect(fs.existsSync(`/dev/shm/${name}`)).toBe(false);
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    for (let k = 0; k < 3; k++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    kept.forEach((b, i) => expect(b).toEqual(message(6, i)));
    expect(() => con.pop()).toThrow(expect.objectContaining({ code: 'E_CLOSED' }));
    expect(() => con.popInto(Buffer.alloc(8))).toThrow(expect.objectContaining({ code: 'E_CLOSED' }));
  });

  it('releases what it read in batches, at once when caught up, and on close() to the next consumer', () => {
    const name = qname('release');
    // 64 KiB ring: the read cursor (control block byte 128) is stored every 4 KiB = 64 records.
    const pub = track(ShmPublisher.create({ name, capacity: 1 << 16 }));
    const readCursor = (): number => Number(fs.readFileSync(`/dev/shm/${name}`).readBigUInt64LE(128));
    for (let i = 0; i < 200; i++) expect(pub.push(message(8, i))).toBe(true); // 0-300 bytes
    let con = track(ShmConsumer.open(name));
    const buf = Buffer.alloc(512);
    let cursor = 0; // where the doc's record sizes put the consumer
    const take = (i: number): void => {
      const n = con.popInto(buf);
      expect(buf.subarray(0, n)).toEqual(message(8, i));
      cursor += (8 + n + 63) & ~63;
      expect(readCursor()).toBeLessThanOrEqual(cursor); // never ahead of what was read
      expect(readCursor()).toBeGreaterThan(cursor - 4096 - 320); // at most a batch behind
    };
    for (let i = 0; i < 30; i++) take(i);
    con.close();
    expect(readCursor()).toBe(cursor);
    con = track(ShmConsumer.open(name));
    for (let i = 30; i < 200; i++) take(i);
    expect(con.popInto(buf)).toBe(-1);
    expect(readCursor()).toBe(cursor); // caught up: the producer sees an empty ring
    expect(con.stats()).toMatchObject({ popped: 170 });
    expect(con.stats().jsFastPathPopped).toBeGreaterThan(160);
  });

  it('jsFastPath: false gives the same stream through the native consumer alone', () => {
    const name = qname('native');
    const pub = track(ShmPublisher.create({ name, capacity: 4096 }));
    const con = track(ShmConsumer.open(name, { jsFastPath: false }));
    for (let i = 0; i < 3000; i++) {
      pub.push(message(7, i));
      expect(con.pop()).toEqual(message(7, i));
    }
    expect(con.stats()).toMatchObject({ popped: 3000, jsFastPathPopped: 0 });
  });
});

function isRecord(m: unknown, tag: number, i: number): boolean {
  const r = m as ShmRecord;
  return r.kind === 'record' && r.seq === i && r.payload.equals(message(tag, i));
}

function framedOne(s: string): Buffer {
  const b = Buffer.from(s);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(b.length);
  return Buffer.concat([len, b]);
}

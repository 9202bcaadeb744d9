/**
 * docs/shm-layout.md is the contract for consumers in other languages: these tests read the
 * documented offsets and worked example out of the doc and check them against a live ring's
 * bytes, and run the doc's Python reference consumer against a real producer.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ShmConsumer, ShmPublisher } from '../ts/index';

const doc = fs.readFileSync(path.join(__dirname, '..', 'docs', 'shm-layout.md'), 'utf8');
const name = `ps-jest-layout-${process.pid}`;
const file = `/dev/shm/${name}`;
let pub: ShmPublisher | undefined;

afterEach(async () => {
  await pub?.close();
  pub = undefined;
  fs.rmSync(file, { force: true });
});

/** Offset of the control-block field whose description contains `field`, from the doc's table. */
function offsetOf(field: string): number {
  const row = doc.split('\n').find((l) => /^\| \d+ \|/.test(l) && l.toLowerCase().includes(field.toLowerCase()));
  if (!row) throw new Error(`docs/shm-layout.md has no control-block row for "${field}"`);
  return Number(row.split('|')[1]);
}

function codeBlockAfter(marker: string, lang = ''): string {
  const at = doc.indexOf(marker);
  const open = doc.indexOf('```' + lang, at);
  const body = doc.indexOf('\n', open) + 1;
  return doc.slice(body, doc.indexOf('```', body));
}

describe('docs/shm-layout.md matches the bytes', () => {
  it('control block offsets and the worked record example', () => {
    pub = ShmPublisher.create({ name, capacity: 4096 });
    for (let i = 1; i <= 5; i++) pub.push(Buffer.alloc(i, 0x11));
    pub.push(Buffer.from('abc'));
    const b = fs.readFileSync(file);
    expect(b.length).toBe(20480 + 4096);
    expect(b.subarray(offsetOf('magic'), offsetOf('magic') + 8).toString()).toBe('PERPRING');
    expect(b.readUInt32LE(offsetOf('layout version'))).toBe(2);
    expect(b.readUInt32LE(offsetOf('header copy area offset'))).toBe(4096);
    expect(b.readUInt32LE(offsetOf('header copy area size'))).toBe(16384);
    expect(b.readUInt32LE(offsetOf('producer pid'))).toBe(process.pid);
    expect(b.readBigUInt64LE(offsetOf('capacity (data'))).toBe(4096n);
    expect(b.readBigUInt64LE(offsetOf('data ring offset'))).toBe(20480n);
    expect(b.readBigUInt64LE(offsetOf('**epoch**'))).toBe(pub.stats().epoch);
    expect(b.readBigUInt64LE(offsetOf('base:'))).toBe(0n);
    expect(b.readBigUInt64LE(offsetOf('**write cursor**'))).toBe(384n);
    expect(b.readBigUInt64LE(offsetOf('records pushed'))).toBe(6n);
    expect(b.readBigUInt64LE(offsetOf('**read cursor**'))).toBe(0n);
    const hex = codeBlockAfter('Worked example').trim().replace(/\s+/g, '');
    expect(b.subarray(20480 + 320, 20480 + 336).toString('hex')).toBe(hex);

    // The header copy: seqlock even, lengths and bytes where the doc puts them.
    pub.setHeader(Buffer.from('HEADER'), Buffer.from('st'));
    const h = fs.readFileSync(file);
    expect(Number(h.readBigUInt64LE(offsetOf('header seqlock'))) % 2).toBe(0);
    expect(h.readBigUInt64LE(offsetOf('holds for'))).toBe(6n);
    expect(h.readBigUInt64LE(offsetOf("cursor of that message's record"))).toBe(384n);
    expect(h.readUInt32LE(offsetOf('header length'))).toBe(6);
    expect(h.readUInt32LE(offsetOf('state length'))).toBe(2);
    expect(h.subarray(4096, 4104).toString()).toBe('HEADERst');
  });

  it('the Python reference consumer of the doc reads a live ring, across the wrap', () => {
    pub = ShmPublisher.create({ name, capacity: 4096 });
    const sent: Buffer[] = [];
    let at = 0; // the write cursor, as the doc's record sizes give it
    const send = (n: number): void => {
      for (let i = 0; i < n; i++) {
        // Records of 1-56 bytes fill one 64-byte line each; a 100-byte one whose record starts in
        // the last line of the ring must wrap.
        const len = at % 4096 >= 4032 ? 100 : 1 + ((sent.length * 7) % 56);
        at += (8 + len + 63) & ~63;
        const m = Buffer.alloc(len, sent.length & 0xff);
        expect(pub?.push(m)).toBe(true);
        sent.push(m);
      }
    };
    send(40);
    const node = ShmConsumer.open(name);
    for (let i = 0; i < 30; i++) expect(node.pop()).toEqual(sent[i]);
    node.close();
    send(40); // runs past the end of the 4 KiB ring, so a payload wraps
    let cursor = 0;
    let straddles = 0;
    for (const m of sent) {
      const start = cursor + 8;
      if (Math.floor(start / 4096) !== Math.floor((start + m.length - 1) / 4096)) straddles++;
      cursor += (8 + m.length + 63) & ~63;
    }
    expect(straddles).toBeGreaterThan(0);
    const script = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ps-layout-')), 'consumer.py');
    fs.writeFileSync(script, codeBlockAfter('## Reference consumer in Python', 'python'));
    const r = spawnSync('python3', [script, name], { encoding: 'utf8', timeout: 20000 });
    fs.rmSync(path.dirname(script), { recursive: true, force: true });
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines).toEqual(sent.slice(30).map((m, i) => `${30 + i} ${m.toString('hex')}`));
    // It advanced the shared read cursor: a Node consumer now finds nothing left.
    const after = ShmConsumer.open(name);
    expect(after.pop()).toBeNull();
    after.close();
  });

  it('consumers refuse a ring of another layout version with a clear error', () => {
    pub = ShmPublisher.create({ name, capacity: 4096 });
    pub.push(Buffer.from('abc'));
    const script = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ps-layout-')), 'consumer.py');
    fs.writeFileSync(script, codeBlockAfter('## Reference consumer in Python', 'python'));
    const fd = fs.openSync(file, 'r+');
    try {
      for (const other of [1, 3]) {
        const v = Buffer.alloc(4);
        v.writeUInt32LE(other);
        fs.writeSync(fd, v, 0, 4, offsetOf('layout version'));
        let err: unknown;
        try {
          ShmConsumer.open(name).close();
        } catch (e) {
          err = e;
        }
        expect(err).toMatchObject({ code: 'E_BAD_LAYOUT' });
        expect((err as Error).message).toContain(`layout version ${other}, this consumer reads version 2 only`);
        const r = spawnSync('python3', [script, name], { encoding: 'utf8', timeout: 20000 });
        expect(r.status).not.toBe(0);
        expect(r.stderr).toContain(`ring has layout version ${other}, this consumer reads version 2 only`);
        expect(r.stdout).toBe('');
      }
      // Back to version 2: the same file is readable again, so the version alone was refused.
      const v = Buffer.alloc(4);
      v.writeUInt32LE(2);
      fs.writeSync(fd, v, 0, 4, offsetOf('layout version'));
      const c = ShmConsumer.open(name);
      expect(c.pop()).toEqual(Buffer.from('abc'));
      c.close();
    } finally {
      fs.closeSync(fd);
      fs.rmSync(path.dirname(script), { recursive: true, force: true });
    }
  });
});

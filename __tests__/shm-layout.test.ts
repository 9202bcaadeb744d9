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
    expect(b.readUInt32LE(offsetOf('layout version'))).toBe(1);
    expect(b.readUInt32LE(offsetOf('header copy area offset'))).toBe(4096);
    expect(b.readUInt32LE(offsetOf('header copy area size'))).toBe(16384);
    expect(b.readUInt32LE(offsetOf('producer pid'))).toBe(process.pid);
    expect(b.readBigUInt64LE(offsetOf('capacity (data'))).toBe(4096n);
    expect(b.readBigUInt64LE(offsetOf('data ring offset'))).toBe(20480n);
    expect(b.readBigUInt64LE(offsetOf('**epoch**'))).toBe(pub.stats().epoch);
    expect(b.readBigUInt64LE(offsetOf('base:'))).toBe(0n);
    expect(b.readBigUInt64LE(offsetOf('**write cursor**'))).toBe(96n);
    expect(b.readBigUInt64LE(offsetOf('records pushed'))).toBe(6n);
    expect(b.readBigUInt64LE(offsetOf('**read cursor**'))).toBe(0n);
    const hex = codeBlockAfter('Worked example').trim().replace(/\s+/g, '');
    expect(b.subarray(20480 + 80, 20480 + 96).toString('hex')).toBe(hex);

    // The header copy: seqlock even, lengths and bytes where the doc puts them.
    pub.setHeader(Buffer.from('HEADER'), Buffer.from('st'));
    const h = fs.readFileSync(file);
    expect(Number(h.readBigUInt64LE(offsetOf('header seqlock'))) % 2).toBe(0);
    expect(h.readBigUInt64LE(offsetOf('holds for'))).toBe(6n);
    expect(h.readBigUInt64LE(offsetOf("cursor of that message's record"))).toBe(96n);
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
        // A 40-byte payload whose record starts in the last 48 bytes of the ring must wrap.
        const len = at % 4096 >= 4048 ? 40 : 1 + ((sent.length * 7) % 40);
        at += (8 + len + 7) & ~7;
        const m = Buffer.alloc(len, sent.length & 0xff);
        expect(pub?.push(m)).toBe(true);
        sent.push(m);
      }
    };
    send(100);
    const node = ShmConsumer.open(name);
    for (let i = 0; i < 90; i++) expect(node.pop()).toEqual(sent[i]);
    node.close();
    send(80); // runs past the end of the 4 KiB ring, so some payloads wrap
    let cursor = 0;
    let straddles = 0;
    for (const m of sent) {
      const start = cursor + 8;
      if (Math.floor(start / 4096) !== Math.floor((start + m.length - 1) / 4096)) straddles++;
      cursor += (8 + m.length + 7) & ~7;
    }
    expect(straddles).toBeGreaterThan(0);
    const script = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ps-layout-')), 'consumer.py');
    fs.writeFileSync(script, codeBlockAfter('## Reference consumer in Python', 'python'));
    const r = spawnSync('python3', [script, name], { encoding: 'utf8', timeout: 20000 });
    fs.rmSync(path.dirname(script), { recursive: true, force: true });
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines).toEqual(sent.slice(90).map((m, i) => `${90 + i} ${m.toString('hex')}`));
    // It advanced the shared read cursor: a Node consumer now finds nothing left.
    const after = ShmConsumer.open(name);
    expect(after.pop()).toBeNull();
    after.close();
  });
});

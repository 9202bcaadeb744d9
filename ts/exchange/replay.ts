/** Reads capture files (`<recv ns> <raw frame>` per line, gzip when the name ends in .gz). */
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import * as zlib from 'node:zlib';
import { PerpSignalError } from '../errors';

export interface ReplayFrame {
  /** Receive time in the capture, ns since the Unix epoch. */
  recvNs: bigint;
  /** Stream name, e.g. `btcusdt@trade`. */
  stream: string;
  symbol: string;
  tradeId: number;
  /** The payload object's JSON text as captured (the `data` part of a combined frame). */
  payload: string;
}

/** Loads a whole capture; throws E_REPLAY_FILE naming the file and line on bad content. */
export async function loadReplay(file: string): Promise<ReplayFrame[]> {
  if (!fs.existsSync(file)) throw new PerpSignalError('E_REPLAY_FILE', `replay file ${file} does not exist: give the path of a capture written by perp-signal record`);
  let input: NodeJS.ReadableStream = fs.createReadStream(file);
  if (file.endsWith('.gz')) input = input.pipe(zlib.createGunzip());
  const rl = readline.createInterface({ input, crlfDelay: Infinity });
  const frames: ReplayFrame[] = [];
  let line = 0;
  try {
    for await (const text of rl) {
      line += 1;
      if (text.trim() === '') continue;
      const sp = text.indexOf(' ');
      const ns = sp > 0 ? text.slice(0, sp) : '';
      if (!/^\d+$/.test(ns)) throw bad(file, line, 'expected `<receive ns> <frame>`');
      const raw = text.slice(sp + 1);
      let obj: { stream?: unknown; data?: { s?: unknown; t?: unknown; e?: unknown } } & { s?: unknown; t?: unknown };
      try {
        obj = JSON.parse(raw);
      } catch {
        throw bad(file, line, 'the frame is not JSON');
      }
      const data = obj.data ?? obj;
      if (typeof data.s !== 'string' || typeof data.t !== 'number') throw bad(file, line, 'the frame is not a trade');
      frames.push({
        recvNs: BigInt(ns),
        stream: typeof obj.stream === 'string' ? obj.stream : `${data.s.toLowerCase()}@trade`,
        symbol: data.s,
        tradeId: data.t,
        payload: obj.data !== undefined ? payloadText(raw) ?? JSON.stringify(obj.data) : raw,
      });
    }
  } catch (e) {
    if (e instanceof PerpSignalError) throw e;
    throw new PerpSignalError('E_REPLAY_FILE', `cannot read replay file ${file} at line ${line}: ${(e as Error).message}`);
  }
  return frames;
}

/** The `data` text of `{"stream":"..","data":{..}}`, byte for byte, without re-serialising. */
function payloadText(raw: string): string | undefined {
  const key = ',"data":';
  const at = raw.indexOf(key);
  if (!raw.startsWith('{"stream":') || at < 0 || !raw.endsWith('}')) return undefined;
  return raw.slice(at + key.length, -1);
}

function bad(file: string, line: number, why: string): PerpSignalError {
  return new PerpSignalError('E_REPLAY_FILE', `replay file ${file}, line ${line}: ${why}`);
}

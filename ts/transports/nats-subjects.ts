/**
 * The NATS subjects of one feed, shared by the publisher and the consumer (docs/wire-format.md,
 * "NATS"): `<prefix>.trades.<SYMBOL>`, `<prefix>.heartbeat`, `<prefix>.snapshot` (request/reply) and
 * `<prefix>.presence` (consumers announce themselves so the forwarder can count them).
 */
import { PerpSignalError } from '../errors';

export interface NatsSubjects {
  readonly prefix: string;
  trades(symbol: string): string;
  /** Every symbol's trades: `<prefix>.trades.>`. */
  readonly allTrades: string;
  readonly heartbeat: string;
  readonly snapshot: string;
  readonly presence: string;
  /** A publisher announces itself here when it starts. */
  readonly publisher: string;
}

// One or more dot-separated tokens, none empty, no wildcard or whitespace.
const PREFIX_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const SYMBOL_RE = /^[A-Za-z0-9_-]{1,32}$/;

export function natsSubjects(prefix: string): NatsSubjects {
  if (!PREFIX_RE.test(prefix)) {
    throw new PerpSignalError(
      'E_NATS_PREFIX',
      `NATS subject prefix "${prefix}" is not valid: use dot-separated words of letters, digits, '_' or '-' (e.g. perp or feeds.binance)`,
    );
  }
  return {
    prefix,
    trades: (symbol: string): string => {
      if (!SYMBOL_RE.test(symbol)) {
        throw new PerpSignalError('E_BAD_SYMBOL', `"${symbol}" cannot be a NATS subject token: use exchange symbols like BTCUSDT`);
      }
      return `${prefix}.trades.${symbol}`;
    },
    allTrades: `${prefix}.trades.>`,
    heartbeat: `${prefix}.heartbeat`,
    snapshot: `${prefix}.snapshot`,
    presence: `${prefix}.presence`,
    publisher: `${prefix}.publisher`,
  };
}

/** NATS header of a snapshot reply: the id of the publisher whose state it is. */
export const PUBLISHER_HEADER = 'Perp-Publisher';
/**
 * On each trade subject message: the full count of frames of its asset this publisher has routed,
 * 1 for the first (a v2 trade frame carries only the low byte of its asset's sequence number).
 */
export const SEQ_HEADER = 'Perp-Seq';
/** On a snapshot reply: each asset's `Perp-Seq` so far, comma separated, in header asset order. */
export const SEQS_HEADER = 'Perp-Seqs';

/** A consumer counts as present this long after its last announcement. */
export const PRESENCE_TTL_MS = 15_000;
/** How often a consumer announces itself. */
export const PRESENCE_EVERY_MS = 5_000;

export interface Presence {
  id: string;
  bye?: boolean;
}

export function encodePresence(p: Presence): Uint8Array {
  return Buffer.from(JSON.stringify(p));
}

/** The announcement in `data`, or undefined for anything else (never throws on foreign bytes). */
export function parsePresence(data: Uint8Array): Presence | undefined {
  if (data.length > 256) return undefined;
  try {
    const o = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')) as unknown;
    if (typeof o !== 'object' || o === null) return undefined;
    const { id, bye } = o as { id?: unknown; bye?: unknown };
    if (typeof id !== 'string' || id.length === 0) return undefined;
    return bye === true ? { id, bye: true } : { id };
  } catch {
    return undefined;
  }
}

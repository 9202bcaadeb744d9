/** Options shared by the forwarder's commands, and the rules that check them. */
import type { Options } from 'yargs';
import { PerpSignalError } from '../errors';
import { createLogger, LOG_LEVELS, type LogLevel, type Logger } from '../observe/logger';

/** Upper bound of assets per wire version: v1 indexes assets in 7 bits. */
export const MAX_ASSETS = { v1: 127, v2: 65535 } as const;

const SYMBOL_RE = /^[A-Z0-9]{2,30}$/;

/**
 * `--assets` accepts comma lists and repeats (`--assets BTCUSDT,ethusdt --assets SOLUSDT`), in any
 * case; duplicates are folded, first occurrence keeps its index.
 */
export function parseAssets(raw: unknown, wire: 'v1' | 'v2' = 'v2'): string[] {
  const items = splitList(raw).map((s) => s.toUpperCase());
  const out: string[] = [];
  for (const s of items) {
    if (!SYMBOL_RE.test(s)) {
      throw new PerpSignalError(
        'E_BAD_SYMBOL',
        `"${s}" is not a symbol: use exchange symbols like BTCUSDT (letters and digits only)`,
      );
    }
    if (!out.includes(s)) out.push(s);
  }
  if (out.length === 0) {
    throw new PerpSignalError('E_NO_ASSETS', 'no assets given: pass --assets BTCUSDT,ETHUSDT (at least one)');
  }
  if (out.length > MAX_ASSETS[wire]) {
    throw new PerpSignalError(
      'E_TOO_MANY_ASSETS',
      `${out.length} assets given; wire ${wire} indexes at most ${MAX_ASSETS[wire]}` +
        (wire === 'v1' ? ': use --wire v2 or fewer assets' : ''),
    );
  }
  return out;
}

/** A list option's values, comma lists and repeats alike (`--x a,b --x c`): trimmed, blanks left out. */
export function splitList(raw: unknown): string[] {
  return (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw])
    .flatMap((v) => String(v).split(','))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export const logOptions = {
  'log-level': {
    choices: LOG_LEVELS as unknown as string[],
    default: 'info',
    describe: 'Least severe log level written to stderr (debug also prints stack traces)',
    global: true,
  },
  'log-format': {
    choices: ['text', 'json'],
    default: 'text',
    describe: 'stderr log format: readable text or JSON lines',
    global: true,
  },
} satisfies Record<string, Options>;

export interface LogArgs {
  'log-level'?: string;
  'log-format'?: string;
}

export function loggerFrom(argv: LogArgs): Logger {
  return createLogger({
    level: (argv['log-level'] ?? 'info') as LogLevel,
    format: argv['log-format'] === 'json' ? 'json' : 'text',
  });
}

/** Codes that mean the user asked for something impossible: exit 2, not 1. */
export const USAGE_CODES = new Set([
  'E_BAD_SYMBOL',
  'E_NO_ASSETS',
  'E_TOO_MANY_ASSETS',
  'E_UNKNOWN_SYMBOL',
  'E_SYMBOL_NOT_TRADING',
  'E_ADDR_IN_USE',
  'E_BIND',
  'E_BAD_CAPACITY',
  'E_BAD_NAME',
  'E_QUEUE_BUSY',
  'E_V1_PRECISION',
  'E_USAGE',
  'E_INVALID_ARG',
  'E_SHM_UNSUPPORTED',
  'E_REPLAY_FILE',
  'E_NATS_PREFIX',
  'E_NATS_WIRE',
  'E_BAD_URL',
  'E_NOT_A_QUEUE',
]);

/** The text the user typed for `--name` (`--name v` or `--name=v`), for messages about it. */
export function rawFlag(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === `--${name}`) return argv[i + 1];
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}

/**
 * Every numeric option the user gave must be a number: yargs turns `--port abc` into NaN, which
 * each command would otherwise report as "NaN" or take as 0. Names the flag and what was typed.
 */
export function checkNumbers(parsed: Record<string, unknown>, argv: readonly string[]): true {
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v === 'number' && Number.isNaN(v) && !/[A-Z]/.test(k)) {
      throw new PerpSignalError('E_USAGE', `--${k} needs a number, got ${JSON.stringify(rawFlag(argv, k) ?? '')}`);
    }
  }
  return true;
}

/**
 * No option the user gave may be empty or blank: `--host ''` would otherwise bind every
 * interface, `--ws-url ''` fall back to the live exchange, `--replay ''` generate instead. Covers
 * every string option of every command, array options element by element; names the flag.
 */
export function checkNotEmpty(parsed: Record<string, unknown>): true {
  for (const [k, v] of Object.entries(parsed)) {
    if (k === '_' || k === '$0' || /[A-Z]/.test(k)) continue;
    const values: unknown[] = Array.isArray(v) ? v : [v];
    const typed = values.find((x) => typeof x === 'string' && x.trim() === '');
    if (typed !== undefined) {
      throw new PerpSignalError('E_USAGE', `--${k} needs a value, got ${JSON.stringify(typed)}: give one, or leave --${k} out for its default if it has one (--help)`);
    }
  }
  return true;
}

/**
 * Checks a numeric option lies in `min..max` (and is whole if `integer`); throws E_USAGE naming
 * the flag. An option left out that has no default (undefined) passes.
 */
export function checkRange(flag: string, v: number | undefined, min: number, max = Infinity, integer = false): void {
  if (v === undefined) return;
  if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    const what = integer ? 'an integer' : 'a number';
    const range = max === Infinity ? `>= ${min}` : `${min}..${max}`;
    throw new PerpSignalError('E_USAGE', `--${flag} must be ${what} ${range}, got ${v}`);
  }
}

/** Checks a numeric option is a number above 0 (a rate, a duration); throws E_USAGE naming the flag. */
export function checkPositive(flag: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isFinite(v) && v > 0)) {
    throw new PerpSignalError('E_USAGE', `--${flag} must be a number > 0, got ${v}`);
  }
}

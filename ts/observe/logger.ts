/**
 * Logs go to stderr (stdout belongs to data: decoded trades, JSON lines). Readable text on a
 * terminal, JSON lines with `--log-format json`.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = object;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const noop = (): void => undefined;
export const noopLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export interface LoggerOptions {
  level?: LogLevel;
  format?: 'text' | 'json';
  stream?: { write(s: string): unknown };
}

function fieldValue(v: unknown): string {
  if (typeof v === 'string') return /[\s="]/.test(v) ? JSON.stringify(v) : v;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return JSON.stringify(v.message);
  return JSON.stringify(v) ?? String(v);
}

function jsonSafe(_key: string, v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return v.message;
  return v;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const min = LOG_LEVELS.indexOf(opts.level ?? 'info');
  const stream = opts.stream ?? process.stderr;
  const json = opts.format === 'json';
  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (LOG_LEVELS.indexOf(level) < min) return;
    const time = new Date().toISOString();
    if (json) {
      stream.write(JSON.stringify({ time, level, msg, ...fields }, jsonSafe) + '\n');
      return;
    }
    let line = `${time} ${level.toUpperCase().padEnd(5)} ${msg}`;
    if (fields) for (const [k, v] of Object.entries(fields)) line += ` ${k}=${fieldValue(v)}`;
    stream.write(line + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

/**
 * Passes at most `perInterval` messages per key each `intervalMs` to `log`, then counts the rest and
 * reports how many were suppressed when the next interval opens, so a flood of bad frames cannot
 * flood the log.
 */
export class RateLimitedLog {
  private readonly windows = new Map<string, { start: number; count: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly perInterval = 5,
    private readonly intervalMs = 10_000,
  ) {}

  warn(key: string, msg: string, fields?: LogFields): void {
    const now = Date.now();
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.intervalMs) {
      if (w && w.suppressed > 0) {
        this.logger.warn(`${key}: ${w.suppressed} similar messages suppressed`, { key, suppressed: w.suppressed });
      }
      w = { start: now, count: 0, suppressed: 0 };
      this.windows.set(key, w);
    }
    if (w.count < this.perInterval) {
      w.count += 1;
      this.logger.warn(msg, fields);
    } else {
      w.suppressed += 1;
    }
  }
}

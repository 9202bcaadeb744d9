/** The logging seam: every module takes an optional Logger; the CLI wires a real one. */
export interface Logger {
  debug(msg: string, fields?: object): void;
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
  error(msg: string, fields?: object): void;
}

const nothing = (): void => undefined;

/** Discards everything: the default when a caller gives no logger. */
export const noopLogger: Logger = { debug: nothing, info: nothing, warn: nothing, error: nothing };

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

  warn(key: string, msg: string, fields?: object): void {
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

/**
 * Exact decimal strings <-> scaled bigints. Prices and quantities never pass through floats, so a
 * value like "0.3" stays "0.3" (never 0.30000000000000004).
 */
import { PerpSignalError } from '../errors';

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

/** Digits after the point as written: "0.10" -> 2, "1" -> 0. */
export function decimalsOf(s: string): number {
  const m = DECIMAL.exec(s);
  if (!m) throw new PerpSignalError('E_BAD_DECIMAL', `not a decimal number: ${JSON.stringify(s)}`);
  return m[3] ? m[3].length : 0;
}

/** "61800.3" at scale 2 -> 6180030n. Throws if `s` has more digits than `scale` keeps. */
export function toScaled(s: string, scale: number): bigint {
  const m = DECIMAL.exec(s);
  if (!m) throw new PerpSignalError('E_BAD_DECIMAL', `not a decimal number: ${JSON.stringify(s)}`);
  const frac = m[3] ?? '';
  if (frac.length > scale && /[1-9]/.test(frac.slice(scale))) {
    throw new PerpSignalError('E_BAD_DECIMAL', `${s} has more than ${scale} decimals`);
  }
  const digits = BigInt(m[2] + frac.slice(0, scale).padEnd(scale, '0'));
  return m[1] ? -digits : digits;
}

/** 6180030n at scale 2 -> "61800.30". */
export function fromScaled(v: bigint, scale: number): string {
  const neg = v < 0n;
  const abs = (neg ? -v : v).toString().padStart(scale + 1, '0');
  const int = abs.slice(0, abs.length - scale);
  const frac = abs.slice(abs.length - scale);
  return (neg ? '-' : '') + (scale > 0 ? `${int}.${frac}` : int);
}

/**
 * Mean of decimal strings, rounded half up to `scale` decimals (at least as many as the inputs
 * carry when `scale` is omitted). Undefined for an empty list.
 */
export function meanDecimal(values: readonly string[], scale?: number): string | undefined {
  if (values.length === 0) return undefined;
  const inScale = Math.max(...values.map(decimalsOf));
  const outScale = scale ?? inScale;
  const work = Math.max(inScale, outScale);
  let sum = 0n;
  for (const v of values) sum += toScaled(v, work);
  const n = BigInt(values.length);
  const shift = 10n ** BigInt(work - outScale);
  const den = n * shift;
  const q = (2n * sum + den) / (2n * den);
  return fromScaled(q, outScale);
}

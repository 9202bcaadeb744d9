import { nativeCall, PerpSignalError } from './errors';
import { binding } from './native';

/** The part of the addon this module wraps (crates/perp-signal-node/src/varint.rs). */
export interface VarintBinding {
  encodeUvarints(values: bigint[]): Buffer;
  decodeUvarints(buf: Uint8Array): bigint[];
}

const native = binding<VarintBinding>();

/** Encodes unsigned integers (0..2^64-1) as concatenated LEB128 varints. */
export function encodeUvarints(values: readonly (bigint | number)[]): Buffer {
  const big = values.map((v, i) => {
    if (typeof v === 'number' && !(Number.isInteger(v) && v >= 0)) {
      throw new PerpSignalError('E_INVALID_ARG', `varint value #${i} is ${v}: varint values must be integers in 0..2^64-1`);
    }
    return BigInt(v);
  });
  return nativeCall(() => native.encodeUvarints(big));
}

/**
 * Decodes every varint in `buf`; throws a PerpSignalError with `code` `E_TRUNCATED`,
 * `E_VARINT_TOO_LONG` or `E_VARINT_OVERFLOW` on hostile input.
 */
export function decodeUvarints(buf: Uint8Array): bigint[] {
  return nativeCall(() => native.decodeUvarints(buf));
}

import { PerpSignalError, decodeUvarints, encodeUvarints } from '../ts/index';
import { binding } from '../ts/native';
import type { VarintBinding } from '../ts/varint';

describe('native binding round trip', () => {
  it('takes a Buffer in and gives a Buffer out', () => {
    const out = encodeUvarints([0n, 127n, 128n, 16384n, 2n ** 64n - 1n]);
    expect(Buffer.isBuffer(out)).toBe(true);
    expect(out.toString('hex')).toBe('007f8001808001' + 'ffffffffffffffffff01');
    expect(decodeUvarints(out)).toEqual([0n, 127n, 128n, 16384n, 2n ** 64n - 1n]);
  });

  it('reads a view into a larger buffer without copying it first', () => {
    const big = Buffer.from('aa8001bb', 'hex');
    expect(decodeUvarints(big.subarray(1, 3))).toEqual([128n]);
  });

  it('turns a Rust error into a thrown Error with a stable code', () => {
    const cases: [string, string][] = [
      ['8080', 'E_TRUNCATED'],
      ['ffffffffffffffffffff01', 'E_VARINT_TOO_LONG'],
      ['ffffffffffffffffff02', 'E_VARINT_OVERFLOW'],
    ];
    for (const [hex, code] of cases) {
      let caught: unknown;
      try {
        decodeUvarints(Buffer.from(hex, 'hex'));
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(PerpSignalError);
      expect(caught).toBeInstanceOf(Error);
      expect((caught as PerpSignalError).code).toBe(code);
    }
  });

  it('throws a real Error (not a crash) straight from the addon', () => {
    let caught: unknown;
    try {
      binding<VarintBinding>().decodeUvarints(Buffer.from('80', 'hex'));
    } catch (e) {
      caught = e;
    }
    // The addon's Error comes from the main realm, so check its shape rather than jest's Error.
    expect(Object.prototype.toString.call(caught)).toBe('[object Error]');
    expect((caught as { code?: string }).code).toBe('E_TRUNCATED');
    expect((caught as Error).message).toMatch(/ended inside a value/);
  });

  it('rejects values a u64 cannot hold with E_INVALID_ARG', () => {
    expect(() => encodeUvarints([-1n])).toThrow(expect.objectContaining({ code: 'E_INVALID_ARG' }));
    expect(() => encodeUvarints([2n ** 64n])).toThrow(expect.objectContaining({ code: 'E_INVALID_ARG' }));
    // Numbers that are no integer: the same typed error, naming the value (not a bare RangeError).
    for (const v of [1.5, NaN, Infinity, -1]) {
      expect(() => encodeUvarints([3, v])).toThrow(expect.objectContaining({ code: 'E_INVALID_ARG', message: expect.stringContaining(String(v)) }));
    }
    expect(decodeUvarints(encodeUvarints([0, 2 ** 60]))).toEqual([0n, 2n ** 60n]);
  });
});

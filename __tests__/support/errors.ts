import { PerpSignalError } from '../../ts/index';

/** The PerpSignalError `fn` throws; fails the test if it throws something else or nothing. */
export function errorOf(fn: () => unknown): PerpSignalError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(PerpSignalError);
    return e as PerpSignalError;
  }
  throw new Error('expected an error');
}

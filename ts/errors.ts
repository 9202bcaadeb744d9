/** Every error the library throws on purpose carries a stable `code`. */
export class PerpSignalError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'PerpSignalError';
  }
}

/** True when `e` is an Error-like value with a string `code`, as the native binding throws. */
export function hasCode(e: unknown): e is Error & { code: string } {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string';
}

/**
 * Runs a native call and re-throws its errors as PerpSignalError, so callers get one error class
 * from this realm (the addon's errors come from the main realm, which `instanceof` in vm contexts
 * such as jest does not recognise) with the core's stable `code` kept.
 */
export function nativeCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (hasCode(e)) throw new PerpSignalError(e.code, e.message);
    throw e;
  }
}

/**
 * Loads the Rust addon. A local build next to the package (development, or built from source at
 * install) wins over the prebuilt platform package, so a contributor always tests what they built.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import { localBinaryFile, platformTriple, prebuiltPackage } from './platform';

// The addon's path is only known at run time, so this is the one dynamic require in the library.
/* eslint-disable @typescript-eslint/no-require-imports */
function load(): unknown {
  const triple = platformTriple();
  const local = path.join(__dirname, '..', localBinaryFile(triple));
  const tried: string[] = [];
  if (fs.existsSync(local)) {
    return require(local) as unknown;
  }
  tried.push(local);
  try {
    return require(prebuiltPackage(triple)) as unknown;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code !== 'MODULE_NOT_FOUND') throw e;
    tried.push(prebuiltPackage(triple));
  }
  const msg =
    `perp-signal-native: no native binary for platform ${triple} (looked for ${tried.join(' and ')}).\n` +
    `Build it from source: install Rust (https://rustup.rs) and run \`npm rebuild perp-signal-native\`, ` +
    `or in a checkout \`npm run build:native\`.`;
  const error = new Error(msg) as NodeJS.ErrnoException;
  error.code = 'E_NO_NATIVE_BINARY';
  throw error;
}

/* eslint-enable @typescript-eslint/no-require-imports */

/**
 * The raw addon. Each `ts/` module that wraps a part of it declares the slice it uses as an
 * interface (e.g. `VarintBinding` in varint.ts) and reads it through `binding<T>()`, so the types of
 * the binding live next to the code that calls it.
 */
const addon = load();

export function binding<T>(): T {
  return addon as T;
}

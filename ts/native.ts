/**
 * Loads the Rust addon. A local build at the package root (development, or built from source at
 * install) wins over the prebuilt platform package, so a contributor always runs what they built.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import { PerpSignalError } from './errors';
import { localBinaryFile, platformTriple, prebuiltPackage } from './platform';

// The addon's path is only known at run time, so this is the one dynamic require in the library.
/* eslint-disable @typescript-eslint/no-require-imports */
function load(): unknown {
  const triple = platformTriple();
  const root = path.join(__dirname, '..');
  const local = path.join(root, localBinaryFile(triple));
  if (fs.existsSync(local)) {
    return require(local) as unknown;
  }
  const pkg = prebuiltPackage(triple);
  try {
    return require(pkg) as unknown;
  } catch (e) {
    // Only "the package is not installed" falls through; a binary that is there but fails to load
    // (wrong glibc, corrupt file) must surface as itself.
    const err = e as NodeJS.ErrnoException;
    if (err.code !== 'MODULE_NOT_FOUND' || !String(err.message).includes(`'${pkg}'`)) throw e;
  }
  const msg =
    `perp-signal-native: no native binary for platform ${triple}: looked for the local build ${local} ` +
    `and the prebuilt package ${pkg} (not installed: no prebuilt exists for this platform, or ` +
    `optional dependencies were omitted).\n` +
    `Build it from source: install Rust (https://rustup.rs), then run ` +
    `\`node ${path.join(root, 'scripts', 'install.js')}\` (in a checkout: \`npm run build:native\`).`;
  throw new PerpSignalError('E_NO_NATIVE_BINARY', msg);
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

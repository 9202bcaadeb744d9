/**
 * Loads the Rust addon. A local build next to the package (development, or built from source at
 * install) wins over the prebuilt platform package, so a contributor always tests what they built.
 */
import * as path from 'node:path';
import * as fs from 'node:fs';
import { localBinaryFile, platformTriple, prebuiltPackage } from './platform';

/** The raw binding, as the Rust crate exports it. Only `ts/` modules use this directly. */
export interface NativeBinding {
  encodeUvarints(values: bigint[]): Buffer;
  decodeUvarints(buf: Uint8Array): bigint[];
}

// The addon's path is only known at run time, so this is the one dynamic require in the library.
/* eslint-disable @typescript-eslint/no-require-imports */
function load(): NativeBinding {
  const triple = platformTriple();
  const local = path.join(__dirname, '..', localBinaryFile(triple));
  const tried: string[] = [];
  if (fs.existsSync(local)) {
    return require(local) as NativeBinding;
  }
  tried.push(local);
  try {
    return require(prebuiltPackage(triple)) as NativeBinding;
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

export const native: NativeBinding = load();

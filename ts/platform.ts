/**
 * What this process runs on, in the names the npm distribution uses: the napi-rs platform triple
 * (e.g. `linux-x64-gnu`), the file of a local build and the package of a prebuilt binary. The
 * loader (native.ts) and the install script (scripts/install.js) both read these, so they always
 * look for the same file and package. Also the one place that knows which platforms have /dev/shm.
 */
import * as fs from 'node:fs';
import { PerpSignalError } from './errors';

export const BINARY_NAME = 'perp-signal-native';

/** napi-rs platform triple for a platform/arch, e.g. `linux-x64-gnu`, `darwin-arm64`. */
export function platformTriple(
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
  musl: boolean = platform === 'linux' && isMusl(),
): string {
  if (platform === 'linux') return `linux-${arch}-${musl ? 'musl' : 'gnu'}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function isMusl(): boolean {
  // glibc reports its version in the process report; musl does not.
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return !report?.header?.glibcVersionRuntime;
}

/** File name of a local (development or built-from-source) addon at the package root. */
export function localBinaryFile(triple: string = platformTriple()): string {
  return `${BINARY_NAME}.${triple}.node`;
}

/** npm package that carries the prebuilt addon for a triple (one of `npm/<triple>/`). */
export function prebuiltPackage(triple: string = platformTriple()): string {
  return `${BINARY_NAME}-${triple}`;
}

/**
 * Throws a PerpSignalError `E_SHM_UNSUPPORTED` unless the shared-memory ring can run here: it maps
 * files under Linux's /dev/shm (a tmpfs), which macOS and Windows do not have. Call it before
 * creating or opening a ring so the user gets this message instead of an ENOENT. The codec and the
 * TCP transport work on every platform.
 */
export function assertShmSupported(
  shmDir: string = '/dev/shm',
  platform: NodeJS.Platform = process.platform,
): void {
  if (platform !== 'linux') {
    throw new PerpSignalError(
      'E_SHM_UNSUPPORTED',
      `The shared-memory ring is Linux-only: it needs ${shmDir} (a tmpfs), which ${platform} does not have. ` +
        'Use the TCP transport on this platform; the codec and TCP work everywhere.',
    );
  }
  let isDir = false;
  try {
    isDir = fs.statSync(shmDir).isDirectory();
  } catch {
    /* reported below */
  }
  if (!isDir) {
    throw new PerpSignalError(
      'E_SHM_UNSUPPORTED',
      `The shared-memory ring needs the directory ${shmDir}, which does not exist here. ` +
        'Mount a tmpfs there (in a container: run it with --ipc=host or --shm-size) or use the TCP transport.',
    );
  }
}

/**
 * Names the napi-rs platform triple of this process, e.g. `linux-x64-gnu`. Shared by the loader and
 * the install script so both look for the same file and package.
 */
export function platformTriple(
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
): string {
  if (platform === 'linux') {
    return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function isMusl(): boolean {
  // glibc reports its version in the process report; musl does not.
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return !report?.header?.glibcVersionRuntime;
}

export const BINARY_NAME = 'perp-signal-native';

/** File name of a local (development or from-source) build of the addon. */
export function localBinaryFile(triple: string = platformTriple()): string {
  return `${BINARY_NAME}.${triple}.node`;
}

/** npm package that carries the prebuilt addon for a triple. */
export function prebuiltPackage(triple: string = platformTriple()): string {
  return `${BINARY_NAME}-${triple}`;
}

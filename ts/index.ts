/** perp-signal-native: the one public entry of the library. */
export { encodeUvarints, decodeUvarints } from './varint';
export { PerpSignalError } from './errors';
export { platformTriple } from './platform';
export * from './codec/index';

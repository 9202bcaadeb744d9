/** perp-signal-native: the one public entry of the library. */
export { encodeUvarints, decodeUvarints } from './varint';
export { PerpSignalError } from './errors';
export { platformTriple } from './platform';
export { ShmPublisher, headerCopyOf } from './transports/shm';
export type { ShmPublisherOptions, HeaderCopy, HeaderSourceEncoder } from './transports/shm';
export { ShmConsumer } from './clients/shm';
export type { ShmConsumerOptions, ShmConsumerStats, ShmEvent, ShmRecord, ShmWaitOptions } from './clients/shm';

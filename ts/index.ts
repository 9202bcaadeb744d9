/** perp-signal-native: the one public entry of the library. */
export { encodeUvarints, decodeUvarints } from './varint';
export { PerpSignalError } from './errors';
export { platformTriple, assertShmSupported } from './platform';
export type { Trade, GapEvent, SymbolInfo } from './types';
export type { Logger } from './observe/logger';
export { noopLogger } from './observe/logger';
export {
  BinanceSource,
  resolveEndpoints,
  endpointOptions,
  apiKeyOption,
  resolveApiKey,
  DEFAULT_WS_URL,
  DEFAULT_REST_URL,
  symbolFromAsset,
} from './source';
export type { SourceOptions, SourceStats, SymbolStats, ReconnectEvent, SourceWarning, BackfillEvent, Endpoints } from './source';
// The local exchange is a product feature (demo, tests, replay); the forwarder path never uses it.
export { LocalExchange } from './exchange';
export type { ExchangeOptions, ExchangeAddress, FaultOptions } from './exchange';
export * from './codec/index';
export {
  TcpFanout,
  REFUSAL_PREFIX,
  type TcpFanoutOptions,
  type TcpFanoutStats,
  type FanoutEncoder,
  type ClientInfo,
  type DisconnectReason,
} from './transports/tcp';
export {
  connect as connectTcp,
  TcpClient,
  type TcpClientOptions,
  type TcpClientEvent,
  type TcpColumnsEvent,
  type TcpClientStats,
  type ConnectedEvent,
  type DisconnectedEvent,
} from './clients/tcp';
export { setSocketKeepalive, socketKeepalive } from './transports/keepalive';
export type { TcpKeepalive, KeepaliveTiming } from './transports/keepalive';
export { NatsPublisher } from './transports/nats';
export type { NatsPublisherOptions, NatsPublisherStats } from './transports/nats';
export { NatsConsumer, connectNats } from './clients/nats';
export type { NatsConsumerOptions, NatsConsumerEvent, NatsConsumerStats, SyncedEvent, LostEvent, SyncReason } from './clients/nats';
export { natsSubjects } from './transports/nats-subjects';
export type { NatsSubjects } from './transports/nats-subjects';
export { ShmPublisher, headerCopyOf } from './transports/shm';
export type { ShmPublisherOptions, HeaderCopy, HeaderSourceEncoder } from './transports/shm';
export { ShmConsumer, lastTimesOf } from './clients/shm';
export type {
  ShmConsumerOptions,
  ShmConsumerStats,
  ShmDecodeEvent,
  ShmEvent,
  ShmHeaderCopy,
  ShmRecord,
  ShmWaitOptions,
} from './clients/shm';
export { Pipeline } from './pipeline';
export type { Handoff, PipelineEvents, PipelineOptions, FrameEncoder, Transport, TradeSource } from './pipeline';

/** The trade codec: wire v1 (byte-compatible with the original service) and v2 (lossless). */
export { Encoder } from './encoder';
export type { EncoderOptions, JsonBatch, Joiner, V1State, RawFrames, IngestState, IngestStop, IngestRun } from './encoder';
export { Decoder } from './decoder';
export type { DecoderOptions } from './decoder';
export { TradeColumns, decimalString } from './columns';
export type { ColumnEvent } from './columns';
export { WIRE_V1_START, MAX_FRAME, frame, startFrame, isStart, FrameReader, splitFrames } from './framing';
export type {
  WireVersion,
  AssetSpec,
  AssetState,
  DecodedMessage,
  DecodedTrade,
  DecodedGap,
  DecodedHeartbeat,
  DecodedSnapshot,
  DecodedLost,
} from './types';

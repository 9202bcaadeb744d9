/** Per-frame routing of a v2 framed batch, natively (crates/perp-signal-core/src/route.rs). */
import { nativeCall } from '../errors';
import { binding } from '../native';

/** The part of the addon this module wraps (crates/perp-signal-node/src/nats.rs). */
export interface RouteBinding {
  v2FrameAssets(framed: Uint8Array): Int32Array;
}

const native = binding<RouteBinding>();

/** `frameAssets` gives this for a frame of the whole stream (heartbeat, snapshot). */
export const NO_ASSET = -1;

/**
 * Asset index of each frame of a u32-LE framed v2 batch, in order, read from the frames' first bytes
 * (no decoder state). Throws a PerpSignalError (`E_TRUNCATED`, `E_UNKNOWN_KIND`, ...) on a bad frame.
 */
export function frameAssets(framed: Uint8Array): Int32Array {
  return nativeCall(() => native.v2FrameAssets(framed));
}

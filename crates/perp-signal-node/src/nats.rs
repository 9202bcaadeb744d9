//! Per-frame routing for the NATS publisher: one call per batch, a typed array back.
use napi::bindgen_prelude::Int32Array;
use napi::{Env, Result};
use napi_derive::napi;
use perp_signal_core::route::{route_frames, Route};

use crate::error;

/// Asset index of each frame of a v2 framed batch; -1 for frames of the whole stream (heartbeat,
/// snapshot). Throws (E_TRUNCATED, E_UNKNOWN_KIND, ...) if any frame is not a v2 frame.
#[napi(js_name = "v2FrameAssets")]
pub fn v2_frame_assets(env: Env, framed: &[u8]) -> Result<Int32Array> {
    let routes = route_frames(framed).map_err(|e| error::codec(&env, e))?;
    let out: Vec<i32> = routes
        .into_iter()
        .map(|r| match r {
            Route::Asset(i) => i32::try_from(i).unwrap_or(i32::MAX),
            Route::Stream => -1,
        })
        .collect();
    Ok(Int32Array::new(out))
}

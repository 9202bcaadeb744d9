//! napi-rs binding of perp-signal-core. Type conversion only: logic belongs in the core.
#![deny(clippy::unwrap_used)]

pub mod codec;
pub mod error;
pub mod ingest_session;
pub mod nats;
pub mod net;
pub mod ring;
pub mod varint;

//! perp-signal core: the trade wire codec and the shared-memory ring.
//!
//! Knows nothing of Node: Rust programs that consume the feed depend on this crate alone.
#![deny(unsafe_code)]
// Input never panics us: no unwrap/expect/panic outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod columns;
pub mod decimal;
pub mod error;
pub mod ingest;
pub mod keepalive;
pub mod ring;
pub mod route;
pub mod symbol_index;
pub mod tcp_consumer;
pub mod trade_json;
pub mod varint;
pub mod wire;

pub use error::CodecError;

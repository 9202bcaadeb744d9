//! perp-signal core: the trade wire codec and the shared-memory ring.
//!
//! Knows nothing of Node: Rust programs that consume the feed depend on this crate alone.
#![deny(unsafe_code)]

pub mod decimal;
pub mod error;
pub mod route;
pub mod varint;
pub mod wire;

pub use error::CodecError;

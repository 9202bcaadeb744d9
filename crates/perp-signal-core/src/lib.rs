//! perp-signal core: the trade wire codec and the shared-memory ring.
//!
//! Knows nothing of Node: Rust programs that consume the feed depend on this crate alone.
#![deny(unsafe_code)]

pub mod error;
pub mod ring;
pub mod varint;

pub use error::CodecError;

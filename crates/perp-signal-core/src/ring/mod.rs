//! Single-producer single-consumer ring of length-prefixed records in a /dev/shm file, the only
//! module of the crate with `unsafe` (the shared mapping, in map.rs). docs/shm-layout.md gives the
//! byte layout; layout.rs is its single owner in code.
#![allow(unsafe_code)]

mod consumer;
mod error;
pub mod layout;
mod map;
pub mod name;
mod pingpong;
mod producer;
mod view;

pub use consumer::{Consumer, ConsumerStats, Pop, StartAt};
pub use error::RingError;
pub use map::Region;
pub use name::check_name;
pub use pingpong::{monotonic_ns, pin_to_cpu, SharedPage};
pub use producer::{Producer, ProducerOptions, ProducerStats, Push};
pub use view::HeaderSnapshot;

//! Errors of the /dev/shm ring. Each has a stable `E_*` code, and its message says what to do.
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RingError {
    #[error(
        "bad queue name {name:?}: {why}; use 1 to 200 characters of A-Z a-z 0-9 . _ -, not starting with '.'"
    )]
    BadName { name: String, why: &'static str },
    #[error("bad capacity {capacity}: the data ring must be a power of two between 4096 and 2^32 bytes, e.g. 1048576")]
    BadCapacity { capacity: u64 },
    #[error("queue {path} is in use by a live producer (pid {pid}); stop it first or choose another --name")]
    ProducerBusy { path: String, pid: u32 },
    #[error("queue {path} already has a consumer attached (pid {pid}); the ring has a single consumer, stop the other one first")]
    ConsumerBusy { path: String, pid: u32 },
    #[error("no queue at {path}; start the producer first (perp-signal shm --name ...)")]
    NoQueue { path: String },
    #[error("{path} is not a perp-signal queue ({why}); remove it by hand or choose another name")]
    NotAQueue { path: String, why: String },
    #[error("{path} has an unsupported layout ({why}); upgrade the consumer or restart the producer")]
    BadLayout { path: String, why: String },
    #[error("record of {len} bytes does not fit a ring of {capacity} bytes (at most {max})")]
    RecordTooLarge { len: usize, capacity: u64, max: usize },
    #[error("header copy of {len} bytes exceeds the {max}-byte header area")]
    HeaderTooLarge { len: usize, max: usize },
    #[error("buffer of {have} bytes is too small for the next record of {need} bytes; pass a buffer of at least {need} bytes (the record was not consumed)")]
    BufferTooSmall { have: usize, need: usize },
    #[error("ring is corrupt at byte {pos}: {why}; the producer or another writer broke the layout")]
    Corrupt { pos: u64, why: &'static str },
    #[error("framed batch is malformed at byte {offset}: {why}")]
    BadFrame { offset: usize, why: &'static str },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
}

impl RingError {
    /// Stable, machine-readable code; the binding exposes it as `err.code`.
    pub fn code(&self) -> &'static str {
        match self {
            RingError::BadName { .. } => "E_BAD_NAME",
            RingError::BadCapacity { .. } => "E_BAD_CAPACITY",
            RingError::ProducerBusy { .. } | RingError::ConsumerBusy { .. } => "E_QUEUE_BUSY",
            RingError::NoQueue { .. } => "E_NO_QUEUE",
            RingError::NotAQueue { .. } => "E_NOT_A_QUEUE",
            RingError::BadLayout { .. } => "E_BAD_LAYOUT",
            RingError::RecordTooLarge { .. } => "E_RECORD_TOO_LARGE",
            RingError::HeaderTooLarge { .. } => "E_HEADER_TOO_LARGE",
            RingError::BufferTooSmall { .. } => "E_BUFFER_TOO_SMALL",
            RingError::Corrupt { .. } => "E_RING_CORRUPT",
            RingError::BadFrame { .. } => "E_BAD_FRAME",
            RingError::Io { .. } => "E_IO",
        }
    }
}

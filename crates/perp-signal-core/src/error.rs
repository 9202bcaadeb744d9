//! Errors of the codec. Every variant has a stable code so that the binding and other languages
//! can name it without parsing prose.
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    #[error("input ended inside a value at byte {offset}")]
    Truncated { offset: usize },
    #[error("varint at byte {offset} is longer than 10 bytes")]
    VarintTooLong { offset: usize },
    #[error("varint at byte {offset} overflows u64")]
    VarintOverflow { offset: usize },
    #[error("{0}")]
    WrongVersion(String),
    #[error("not a perp-signal header: {0}")]
    BadMagic(String),
    #[error("bad header: {0}")]
    BadHeader(String),
    #[error("frame names asset {index} but the header lists {count} assets")]
    UnknownAsset { index: u64, count: usize },
    #[error("unknown frame kind 0x{tag:02x} at byte 0; this decoder knows trade (0x80..0xff), heartbeat (0x01), gap (0x02) and snapshot (0x03)")]
    UnknownKind { tag: u8 },
    #[error("frame length {len} exceeds the limit of {max} bytes; the stream is corrupt or not perp-signal framing")]
    FrameTooLong { len: usize, max: usize },
    #[error("{extra} unexpected bytes after the message ended at byte {offset}")]
    TrailingBytes { offset: usize, extra: usize },
    #[error("{0}")]
    BadDecimal(String),
    #[error("{0}")]
    V1Precision(String),
    #[error("{0}")]
    Scale(String),
    #[error("unknown symbol {0:?}: it is not in the encoder's asset list")]
    UnknownSymbol(String),
    #[error("bad asset list: {0}")]
    BadAssets(String),
    #[error("{0}")]
    Overflow(String),
    #[error("reserved flag bits 0x{flags:02x} set in a trade frame")]
    BadFlags { flags: u8 },
    #[error("bad snapshot: {0}")]
    BadSnapshot(String),
    #[error("{0}")]
    InvalidArg(String),
}

impl CodecError {
    /// Stable, machine-readable code; the binding exposes it as `err.code`.
    pub fn code(&self) -> &'static str {
        match self {
            CodecError::Truncated { .. } => "E_TRUNCATED",
            CodecError::VarintTooLong { .. } => "E_VARINT_TOO_LONG",
            CodecError::VarintOverflow { .. } => "E_VARINT_OVERFLOW",
            CodecError::WrongVersion(_) => "E_WRONG_VERSION",
            CodecError::BadMagic(_) => "E_BAD_MAGIC",
            CodecError::BadHeader(_) => "E_BAD_HEADER",
            CodecError::UnknownAsset { .. } => "E_UNKNOWN_ASSET",
            CodecError::UnknownKind { .. } => "E_UNKNOWN_KIND",
            CodecError::FrameTooLong { .. } => "E_FRAME_TOO_LONG",
            CodecError::TrailingBytes { .. } => "E_TRAILING_BYTES",
            CodecError::BadDecimal(_) => "E_BAD_DECIMAL",
            CodecError::V1Precision(_) => "E_V1_PRECISION",
            CodecError::Scale(_) => "E_SCALE",
            CodecError::UnknownSymbol(_) => "E_UNKNOWN_SYMBOL",
            CodecError::BadAssets(_) => "E_BAD_ASSETS",
            CodecError::Overflow(_) => "E_OVERFLOW",
            CodecError::BadFlags { .. } => "E_BAD_FLAGS",
            CodecError::BadSnapshot(_) => "E_BAD_SNAPSHOT",
            CodecError::InvalidArg(_) => "E_INVALID_ARG",
        }
    }
}

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
}

impl CodecError {
    /// Stable, machine-readable code; the binding exposes it as `err.code`.
    pub fn code(&self) -> &'static str {
        match self {
            CodecError::Truncated { .. } => "E_TRUNCATED",
            CodecError::VarintTooLong { .. } => "E_VARINT_TOO_LONG",
            CodecError::VarintOverflow { .. } => "E_VARINT_OVERFLOW",
        }
    }
}

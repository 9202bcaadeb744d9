//! Byte layout of a ring file. docs/shm-layout.md is the prose version of this module; keep them
//! in step (the layout version below changes whenever an offset does).
//!
//! ```text
//! [0, 4096)            control block, one job per 64-byte cache line
//! [4096, 20480)        header copy area (codec header + resume state), guarded by a seqlock
//! [20480, 20480+cap)   data ring of records {u32 len|1<<31, u32 seq_lo, payload, pad to 64}
//! ```
//! Every integer is little-endian; cursors are free-running byte counts (never wrap in practice).
use super::error::RingError;

/// `b"PERPRING"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"PERPRING");
pub const LAYOUT_VERSION: u32 = 2;

pub const CONTROL_SIZE: usize = 4096;
pub const HEADER_AREA_OFFSET: usize = CONTROL_SIZE;
pub const HEADER_AREA_SIZE: usize = 16384;
pub const DATA_OFFSET: usize = HEADER_AREA_OFFSET + HEADER_AREA_SIZE;

pub const MIN_CAPACITY: u64 = 4096;
pub const MAX_CAPACITY: u64 = 1 << 32;

/// Record header, one u64 word: low u32 = payload length | RECORD_COMMITTED, high u32 = low bits
/// of the message sequence number. A zero word means "nothing here yet": the producer zeroes the
/// word after each record before committing the record, so a consumer can poll the word at its
/// read cursor instead of the write cursor and see header and payload in one cache-line transfer.
pub const RECORD_HEADER: usize = 8;
pub const RECORD_COMMITTED: u32 = 1 << 31;
/// Records start on cache-line boundaries (layout version 2; version 1 packed them 8-aligned).
/// A record of up to 56 payload bytes then lies in one 64-byte line and reaches the consumer in
/// one line transfer; packed, half of the 16-64-byte records straddled two lines and the consumer
/// waited for both (rust->rust hand-off p50 89 -> 70 ns against a 50 ns floor, docs/performance.md).
pub const RECORD_ALIGN: u64 = 64;

/// Epoch values with a meaning of their own; any other value names one producer run.
pub const EPOCH_INITIALIZING: u64 = 0;
pub const EPOCH_CLOSED: u64 = u64::MAX;

// Line 0: identity, written only while the epoch is EPOCH_INITIALIZING.
pub const OFF_MAGIC: usize = 0;
pub const OFF_VERSION: usize = 8; // u32
pub const OFF_HEADER_AREA_OFFSET: usize = 12; // u32
pub const OFF_HEADER_AREA_SIZE: usize = 16; // u32
pub const OFF_PRODUCER_PID: usize = 20; // u32
pub const OFF_CAPACITY: usize = 24;
pub const OFF_DATA_OFFSET: usize = 32;
pub const OFF_EPOCH: usize = 40;
pub const OFF_BASE: usize = 48;
pub const OFF_STARTED_NS: usize = 56;

// Line 1: written by the producer on every push.
pub const OFF_WRITE: usize = 64;
pub const OFF_PUSHED: usize = 72;
pub const OFF_DROPPED: usize = 80;

// Line 2: written by the consumer on every pop.
pub const OFF_READ: usize = 128;

// Line 3: written by the consumer rarely.
pub const OFF_CONSUMER_PID: usize = 192; // u32
pub const OFF_HEADER_REQUEST: usize = 200;

// Line 4: header copy metadata, under the seqlock at OFF_HDR_LOCK.
pub const OFF_HDR_LOCK: usize = 256;
pub const OFF_HDR_EPOCH: usize = 264;
pub const OFF_HDR_SEQ: usize = 272;
pub const OFF_HDR_POS: usize = 280;
pub const OFF_HDR_LENS: usize = 288; // u32 header length, then u32 state length

/// Byte ranges locked with open-file-description locks: a live producer holds the first, a live
/// consumer the second. The kernel drops them when the process dies, so liveness needs no pid test.
pub const LOCK_PRODUCER: i64 = 0;
pub const LOCK_CONSUMER: i64 = 1;

pub fn file_size(capacity: u64) -> u64 {
    DATA_OFFSET as u64 + capacity
}

pub fn check_capacity(capacity: u64) -> Result<(), RingError> {
    if !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) || !capacity.is_power_of_two() {
        return Err(RingError::BadCapacity { capacity });
    }
    Ok(())
}

/// Bytes a record with `len` payload bytes occupies in the ring.
#[inline]
pub fn record_size(len: usize) -> u64 {
    (RECORD_HEADER as u64 + len as u64 + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

/// Largest payload a ring of `capacity` bytes accepts (one record, aligned, plus the zeroed next
/// header).
pub fn max_payload(capacity: u64) -> usize {
    let cap = usize::try_from(capacity).unwrap_or(usize::MAX);
    (cap - RECORD_ALIGN as usize - RECORD_HEADER).min(RECORD_COMMITTED as usize - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_rules() {
        assert!(check_capacity(4096).is_ok());
        assert!(check_capacity(1 << 20).is_ok());
        for bad in [0, 1, 2048, 4095, 4097, 6000, (1 << 32) + 1, 1 << 33] {
            let err = check_capacity(bad).unwrap_err();
            assert_eq!(err.code(), "E_BAD_CAPACITY");
        }
    }

    #[test]
    fn records_are_aligned() {
        assert_eq!(record_size(0), 64);
        assert_eq!(record_size(56), 64);
        assert_eq!(record_size(57), 128);
        assert_eq!(record_size(120), 128);
        assert_eq!(record_size(121), 192);
        assert_eq!(max_payload(4096), 4024);
        // The largest record and the zeroed header word after it fit; one byte more does not.
        assert!(record_size(4024) + RECORD_HEADER as u64 <= 4096);
        assert!(record_size(4025) + RECORD_HEADER as u64 > 4096);
        assert_eq!(MAGIC.to_le_bytes(), *b"PERPRING");
        const { assert!(OFF_WRITE / 64 != OFF_READ / 64) };
    }
}

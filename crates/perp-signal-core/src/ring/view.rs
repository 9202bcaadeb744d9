//! What producer and consumer share: the mapped file seen through the layout, the wrap-around
//! copies of the data ring and the seqlocked header copy.
use std::sync::atomic::{fence, AtomicU64, Ordering};

use super::layout::*;
use super::map::Mapping;

pub struct RingView {
    pub map: Mapping,
    pub capacity: u64,
    mask: u64,
}

/// The header copy as a consumer read it: the codec header and resume state that hold for the
/// message with sequence number `seq`, whose record starts at ring byte `pos`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSnapshot {
    pub epoch: u64,
    pub seq: u64,
    pub pos: u64,
    pub header: Vec<u8>,
    pub state: Vec<u8>,
}

impl RingView {
    pub fn new(map: Mapping, capacity: u64) -> Self {
        RingView {
            map,
            capacity,
            mask: capacity - 1,
        }
    }

    #[inline]
    pub fn at(&self, off: usize) -> &AtomicU64 {
        self.map.u64_at(off)
    }

    #[inline]
    fn ring_off(&self, pos: u64) -> usize {
        DATA_OFFSET + (pos & self.mask) as usize
    }

    /// The record header word at `pos` (8-aligned, and capacity a multiple of 8: never wraps).
    #[inline]
    pub fn record_word(&self, pos: u64) -> &AtomicU64 {
        self.map.u64_at(self.ring_off(pos))
    }

    /// Copies `src` into the ring at `pos`, wrapping byte-wise at the end.
    #[inline]
    pub fn put(&self, pos: u64, src: &[u8]) {
        let start = (pos & self.mask) as usize;
        let first = src.len().min(self.capacity as usize - start);
        self.map.write_bytes(DATA_OFFSET + start, &src[..first]);
        if first < src.len() {
            self.map.write_bytes(DATA_OFFSET, &src[first..]);
        }
    }

    #[inline]
    pub fn get(&self, pos: u64, dst: &mut [u8]) {
        let start = (pos & self.mask) as usize;
        let first = dst.len().min(self.capacity as usize - start);
        self.map.read_bytes(DATA_OFFSET + start, &mut dst[..first]);
        if first < dst.len() {
            self.map.read_bytes(DATA_OFFSET, &mut dst[first..]);
        }
    }

    /// Seqlock writer: readers that overlap this write see an odd or changed lock and retry.
    pub fn write_header(&self, epoch: u64, seq: u64, pos: u64, header: &[u8], state: &[u8]) {
        let lock = self.at(OFF_HDR_LOCK);
        let l = lock.load(Ordering::Relaxed);
        lock.store(l | 1, Ordering::Relaxed);
        fence(Ordering::Release);
        self.at(OFF_HDR_EPOCH).store(epoch, Ordering::Relaxed);
        self.at(OFF_HDR_SEQ).store(seq, Ordering::Relaxed);
        self.at(OFF_HDR_POS).store(pos, Ordering::Relaxed);
        let lens = (header.len() as u64) | ((state.len() as u64) << 32);
        self.at(OFF_HDR_LENS).store(lens, Ordering::Relaxed);
        let words = header.iter().chain(state.iter()).copied();
        store_words(self, words, header.len() + state.len());
        lock.store((l | 1) + 1, Ordering::Release);
    }

    /// Seqlock reader; None if no header was written in this epoch or the writer kept racing us.
    pub fn read_header(&self, epoch: u64) -> Option<HeaderSnapshot> {
        let lock = self.at(OFF_HDR_LOCK);
        for _ in 0..1000 {
            let l1 = lock.load(Ordering::Acquire);
            if l1 == 0 {
                return None;
            }
            if l1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let hdr_epoch = self.at(OFF_HDR_EPOCH).load(Ordering::Relaxed);
            let seq = self.at(OFF_HDR_SEQ).load(Ordering::Relaxed);
            let pos = self.at(OFF_HDR_POS).load(Ordering::Relaxed);
            let lens = self.at(OFF_HDR_LENS).load(Ordering::Relaxed);
            let hlen = (lens & 0xffff_ffff) as usize;
            let slen = (lens >> 32) as usize;
            if hlen + slen > HEADER_AREA_SIZE {
                continue; // torn read of the lengths; the lock check below would fail too
            }
            let bytes = load_words(self, hlen + slen);
            fence(Ordering::Acquire);
            if lock.load(Ordering::Relaxed) != l1 {
                continue;
            }
            if hdr_epoch != epoch {
                return None;
            }
            let state = bytes[hlen..].to_vec();
            let mut header = bytes;
            header.truncate(hlen);
            return Some(HeaderSnapshot {
                epoch,
                seq,
                pos,
                header,
                state,
            });
        }
        None
    }
}

// The header area is read while the producer may rewrite it, so it is accessed as relaxed atomic
// words rather than plain bytes; the seqlock tells the reader whether its copy is whole.
fn store_words(view: &RingView, bytes: impl Iterator<Item = u8>, len: usize) {
    let mut word = [0u8; 8];
    let mut i = 0;
    for b in bytes {
        word[i % 8] = b;
        i += 1;
        if i % 8 == 0 {
            view.at(HEADER_AREA_OFFSET + i - 8)
                .store(u64::from_le_bytes(word), Ordering::Relaxed);
            word = [0u8; 8];
        }
    }
    if !len.is_multiple_of(8) {
        view.at(HEADER_AREA_OFFSET + len - len % 8)
            .store(u64::from_le_bytes(word), Ordering::Relaxed);
    }
}

fn load_words(view: &RingView, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    for off in (0..len).step_by(8) {
        let w = view.at(HEADER_AREA_OFFSET + off).load(Ordering::Relaxed);
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.truncate(len);
    out
}

//! The single consumer: attaches to a ring by name and pops records. `pop_into` makes no system
//! call; it reports losses (sequence gaps), producer restarts (epoch changes) and shutdown as
//! values, so the caller decides how to resync.
use std::path::PathBuf;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;

use super::error::RingError;
use super::layout::*;
use super::map::{self, Mapping, Region};
use super::name::path_of;
use super::view::{HeaderSnapshot, RingView};

/// Where a newly attached consumer starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// At the shared read cursor: records pushed before we attached and not yet consumed.
    #[default]
    Oldest,
    /// At the write cursor: only records pushed from now on.
    Latest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pop {
    /// A record of `len` bytes was copied into the buffer; `seq` is its message number.
    Record { len: usize, seq: u64 },
    /// Nothing to read.
    Empty,
    /// `count` messages were dropped by the producer before the next record (which the next
    /// pop returns). Decoders of delta-encoded streams must resync before using it.
    Lost { count: u64 },
    /// The producer restarted; reading continues at the new run's first record.
    Epoch { epoch: u64 },
    /// The producer shut down; a new producer on the same file shows up as `Epoch`.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerStats {
    pub epoch: u64,
    /// Messages this consumer learnt were lost (sequence gaps plus records skipped by resyncs).
    pub lost: u64,
    pub popped: u64,
    /// Producer's own counters for the current epoch.
    pub producer_pushed: u64,
    pub producer_dropped: u64,
    pub producer_pid: u32,
    /// Bytes written and not yet read.
    pub backlog: u64,
}

pub struct Consumer {
    view: RingView,
    path: PathBuf,
    start: StartAt,
    epoch: u64,
    read: u64,
    /// The read cursor as last stored in the control block (see publish_every).
    published: u64,
    /// Bytes consumed between stores of the read cursor. Storing it at every pop made its cache
    /// line travel to the producer and back for every record whenever the producer was waiting
    /// for room; now it travels once per this many bytes, and at once when the ring runs empty
    /// (so a caught-up consumer always shows the producer an empty ring).
    publish_every: u64,
    expected: Option<u64>,
    lost: u64,
    popped: u64,
    max_payload: usize,
}

impl Consumer {
    pub fn open(name: &str, start: StartAt) -> Result<Self, RingError> {
        let path = path_of(name)?;
        let p = || path.display().to_string();
        let file = match map::open_existing(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RingError::NoQueue { path: p() })
            }
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(RingError::NotAQueue {
                    path: p(),
                    why: "it is a symbolic link, which is never followed".into(),
                })
            }
            Err(e) => return Err(map::io_err("open", &path, e)),
        };
        wait_while_created(&file);
        let meta = file.metadata().map_err(|e| map::io_err("stat", &path, e))?;
        if !meta.file_type().is_file() || meta.len() < DATA_OFFSET as u64 {
            return Err(RingError::NotAQueue {
                path: p(),
                why: format!("it is not a ring file ({} bytes)", meta.len()),
            });
        }
        let control = Mapping::new(file, CONTROL_SIZE, &path)?;
        let magic = control.u64_at(OFF_MAGIC).load(Ordering::Acquire);
        if magic != MAGIC {
            return Err(RingError::NotAQueue {
                path: p(),
                why: "its magic number is not PERPRING".into(),
            });
        }
        let version = control.u32_at(OFF_VERSION).load(Ordering::Relaxed);
        if version != LAYOUT_VERSION {
            return Err(RingError::BadLayout {
                path: p(),
                why: format!(
                    "layout version {version}, this consumer reads version {LAYOUT_VERSION} only: \
                     producer and consumer come from different perp-signal releases"
                ),
            });
        }
        let capacity = control.u64_at(OFF_CAPACITY).load(Ordering::Relaxed);
        if check_capacity(capacity).is_err() || meta.len() != file_size(capacity) {
            return Err(RingError::BadLayout {
                path: p(),
                why: format!("capacity {capacity} does not match the file size {}", meta.len()),
            });
        }
        let file = control
            .file()
            .try_clone()
            .map_err(|e| map::io_err("dup", &path, e))?;
        if !map::try_lock(&file, LOCK_CONSUMER).map_err(|e| map::io_err("lock", &path, e))? {
            let pid = control.u32_at(OFF_CONSUMER_PID).load(Ordering::Relaxed);
            return Err(RingError::ConsumerBusy { path: p(), pid });
        }
        drop(control);
        let map = Mapping::new_unlocked(file, file_size(capacity) as usize, &path)?;
        map.u32_at(OFF_CONSUMER_PID)
            .store(std::process::id(), Ordering::Relaxed);
        let mut c = Consumer {
            view: RingView::new(map, capacity),
            path,
            start,
            epoch: EPOCH_INITIALIZING,
            read: 0,
            published: 0,
            publish_every: publish_interval(capacity),
            expected: None,
            lost: 0,
            popped: 0,
            max_payload: max_payload(capacity),
        };
        let e = c.view.at(OFF_EPOCH).load(Ordering::Acquire);
        if e != EPOCH_INITIALIZING && e != EPOCH_CLOSED {
            c.attach(e, start);
        }
        Ok(c)
    }

    fn attach(&mut self, epoch: u64, start: StartAt) {
        let at = |off| self.view.at(off);
        let base = at(OFF_BASE).load(Ordering::Relaxed);
        let write = at(OFF_WRITE).load(Ordering::Acquire);
        let read = match start {
            StartAt::Oldest => at(OFF_READ).load(Ordering::Relaxed).clamp(base, write),
            StartAt::Latest => write,
        };
        self.epoch = epoch;
        self.read = read;
        self.expected = None;
        self.publish();
    }

    /// Stores the read cursor in the control block, releasing what we read to the producer.
    #[inline]
    fn publish(&mut self) {
        self.published = self.read;
        self.view.at(OFF_READ).store(self.read, Ordering::Release);
    }

    /// Copies the next record into `buf`. Makes no system call.
    #[inline]
    pub fn pop_into(&mut self, buf: &mut [u8]) -> Result<Pop, RingError> {
        let e = self.view.at(OFF_EPOCH).load(Ordering::Acquire);
        if e != self.epoch && !self.draining(e) {
            return Ok(self.on_epoch(e));
        }
        let word = self.view.record_word(self.read).load(Ordering::Acquire);
        if word == 0 {
            if self.published != self.read {
                self.publish();
            }
            return Ok(if e == self.epoch { Pop::Empty } else { Pop::Closed });
        }
        let len32 = word as u32;
        let seq_lo = (word >> 32) as u32;
        let len = (len32 & !RECORD_COMMITTED) as usize;
        let need = record_size(len);
        if len32 & RECORD_COMMITTED == 0 || len > self.max_payload {
            return self.corrupt("record header is not a committed record");
        }
        let seq = match self.expected {
            Some(exp) => {
                let gap = seq_lo.wrapping_sub(exp as u32);
                if gap != 0 {
                    if gap > u32::MAX / 2 {
                        return self.corrupt("sequence number went backwards");
                    }
                    self.expected = Some(exp + u64::from(gap));
                    self.lost += u64::from(gap);
                    return Ok(Pop::Lost {
                        count: u64::from(gap),
                    });
                }
                exp
            }
            None => self.full_seq(seq_lo),
        };
        if buf.len() < len {
            return Err(RingError::BufferTooSmall {
                have: buf.len(),
                need: len,
            });
        }
        self.view.get(self.read + RECORD_HEADER as u64, &mut buf[..len]);
        // If a new producer started while we copied, the bytes may be its; seqlock-style check.
        fence(Ordering::Acquire);
        let e = self.view.at(OFF_EPOCH).load(Ordering::Relaxed);
        if e != self.epoch && !self.draining(e) {
            return Ok(self.on_epoch(e));
        }
        self.read += need;
        if self.read - self.published >= self.publish_every {
            self.publish();
        }
        self.expected = Some(seq + 1);
        self.popped += 1;
        Ok(Pop::Record { len, seq })
    }

    /// Like pop_into, but while the ring is empty polls again up to `spin_polls` times (a few ns
    /// each, still no system call) before answering Empty: a caller that pays a high price per
    /// call (Node through N-API) waits here instead of in its own loop.
    #[inline]
    pub fn pop_into_spin(&mut self, buf: &mut [u8], spin_polls: u32) -> Result<Pop, RingError> {
        let mut left = spin_polls;
        loop {
            let r = self.pop_into(buf)?;
            if r != Pop::Empty || left == 0 {
                return Ok(r);
            }
            left -= 1;
            std::hint::spin_loop();
        }
    }

    /// Pops into a fresh Vec; Empty/Lost/Epoch/Closed come back as the Err side of the inner
    /// result so a caller can match on them.
    pub fn pop(&mut self) -> Result<Result<(Vec<u8>, u64), Pop>, RingError> {
        let mut buf = vec![0u8; self.next_len().unwrap_or(0)];
        match self.pop_into(&mut buf)? {
            Pop::Record { len, seq } => {
                buf.truncate(len);
                Ok(Ok((buf, seq)))
            }
            other => Ok(Err(other)),
        }
    }

    /// Payload length of the next record, if one is ready in this epoch.
    pub fn next_len(&mut self) -> Option<usize> {
        let e = self.view.at(OFF_EPOCH).load(Ordering::Acquire);
        if e != self.epoch && !self.draining(e) {
            return None;
        }
        let word = self.view.record_word(self.read).load(Ordering::Acquire);
        let len = (word as u32 & !RECORD_COMMITTED) as usize;
        (word != 0).then_some(len.min(self.max_payload))
    }

    /// After a clean shutdown the records already pushed stay valid (nobody writes the file until
    /// a new producer marks it initializing), so they are still delivered before `Closed`.
    #[inline]
    fn draining(&self, e: u64) -> bool {
        e == EPOCH_CLOSED && self.epoch != EPOCH_INITIALIZING
    }

    fn on_epoch(&mut self, e: u64) -> Pop {
        match e {
            EPOCH_INITIALIZING => Pop::Empty,
            EPOCH_CLOSED => Pop::Closed,
            _ if self.epoch == EPOCH_INITIALIZING => {
                // First producer run we see since opening: not a restart.
                self.attach(e, self.start);
                Pop::Empty
            }
            _ => {
                // A restarted producer's records are all new to us: read from its first.
                self.attach(e, StartAt::Oldest);
                Pop::Epoch { epoch: e }
            }
        }
    }

    fn corrupt(&self, why: &'static str) -> Result<Pop, RingError> {
        Err(RingError::Corrupt { pos: self.read, why })
    }

    /// Widens a record's 32-bit sequence number using the producer's counters, which are at most
    /// one ring of records ahead of it.
    fn full_seq(&self, seq_lo: u32) -> u64 {
        let next = self.view.at(OFF_PUSHED).load(Ordering::Relaxed)
            + self.view.at(OFF_DROPPED).load(Ordering::Relaxed);
        next.wrapping_sub(u64::from((next as u32).wrapping_sub(seq_lo)))
    }

    /// True when the producer restarted or shut down since we attached (pop reports which).
    pub fn epoch_changed(&self) -> bool {
        self.view.at(OFF_EPOCH).load(Ordering::Acquire) != self.epoch
    }

    /// Asks the producer to store a fresh header copy (it does so at its next publish).
    pub fn request_header(&self) {
        self.view.at(OFF_HEADER_REQUEST).fetch_add(1, Ordering::AcqRel);
    }

    /// The producer's current header copy for this epoch, if it wrote one.
    pub fn header(&self) -> Option<HeaderSnapshot> {
        self.view.read_header(self.epoch)
    }

    /// Moves to the point where `snap` holds, skipping (and counting as lost) the records before
    /// it. False if the snapshot is behind us or from another epoch: request a newer one.
    pub fn resync(&mut self, snap: &HeaderSnapshot) -> bool {
        if snap.epoch != self.epoch || snap.pos < self.read || !snap.pos.is_multiple_of(RECORD_ALIGN) {
            return false;
        }
        let write = self.view.at(OFF_WRITE).load(Ordering::Acquire);
        if snap.pos > write {
            return false;
        }
        if let Some(exp) = self.expected {
            self.lost += snap.seq.saturating_sub(exp);
        }
        self.read = snap.pos;
        self.expected = Some(snap.seq);
        self.publish();
        true
    }

    /// Where this consumer stands: the read cursor, and the sequence number of the next record
    /// once known. Together with `epoch()`, all a second reader of the same mapping (the Node
    /// binding's JS fast path) needs to pop ordinary records itself.
    pub fn position(&mut self) -> (u64, Option<u64>) {
        // The other reader continues from here and stores the cursor itself: bring the control
        // block up to date first.
        if self.published != self.read {
            self.publish();
        }
        (self.read, self.expected)
    }

    /// Hand-over back from such a reader: it popped `popped` records (the same way pop_into
    /// would, read cursor already stored in the control block), which moved us to `read` with
    /// `expected` next. Refused (Corrupt, nothing changed) unless that is a move forward within
    /// what the producer has written: a reader that disagrees with us is a bug, never a guess.
    pub fn advance_to(&mut self, read: u64, expected: u64, popped: u64) -> Result<(), RingError> {
        let write = self.view.at(OFF_WRITE).load(Ordering::Acquire);
        let from = self.expected.unwrap_or(expected);
        let ok = read >= self.read
            && read <= write
            && read.is_multiple_of(RECORD_ALIGN)
            && self.expected.is_some()
            && expected >= from
            && expected - from == popped;
        if !ok {
            return Err(RingError::Corrupt {
                pos: self.read,
                why: "an outside reader handed back a position this consumer cannot be at",
            });
        }
        self.read = read;
        self.expected = Some(expected);
        self.popped += popped;
        self.publish();
        Ok(())
    }

    /// Another owner of the whole mapped file (see Mapping::share): it stays mapped while that is
    /// alive, even after this consumer is dropped and its lock released.
    pub fn shared_region(&self) -> Arc<Region> {
        self.view.map.share()
    }

    /// Sequence number of the next record we expect, once known.
    pub fn expected_seq(&self) -> Option<u64> {
        self.expected
    }

    /// Data ring bytes.
    pub fn capacity(&self) -> u64 {
        self.view.capacity
    }

    /// Largest payload a record of this ring can carry.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn stats(&self) -> ConsumerStats {
        let at = |off| self.view.at(off).load(Ordering::Relaxed);
        ConsumerStats {
            epoch: self.epoch,
            lost: self.lost,
            popped: self.popped,
            producer_pushed: at(OFF_PUSHED),
            producer_dropped: at(OFF_DROPPED),
            producer_pid: self.view.map.u32_at(OFF_PRODUCER_PID).load(Ordering::Relaxed),
            backlog: at(OFF_WRITE).saturating_sub(self.read),
        }
    }

    /// True while a live process holds the producer lock of this file (a system call: use it on
    /// the idle path only).
    pub fn producer_alive(&self) -> bool {
        map::is_locked(self.view.map.file(), LOCK_PRODUCER).unwrap_or(false)
    }

    /// True when the name now points at another file (the producer was replaced or removed), so
    /// a caller that follows the queue should reopen it. A system call: idle path only.
    pub fn replaced(&self) -> bool {
        !map::still_named(&self.path, self.view.map.file())
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // The next consumer starts where we stopped.
        if self.published != self.read && self.epoch != EPOCH_INITIALIZING {
            self.publish();
        }
        self.view.map.u32_at(OFF_CONSUMER_PID).store(0, Ordering::Relaxed);
    }
}

/// How many consumed bytes the consumer lets pass between stores of its read cursor: a 16th of
/// the ring (so the producer never sees more than that of it as used when it is free), at most
/// 4 KiB (64 small records).
fn publish_interval(capacity: u64) -> u64 {
    (capacity / 16).min(4096)
}

/// A producer creates the file before it sizes it and writes the identity fields; a consumer
/// that opens it in that window would call it "not a queue". While the producer lock is held and
/// the identity is still incomplete, wait for it (bounded: 2 s, then the checks decide).
fn wait_while_created(file: &std::fs::File) {
    use std::os::unix::fs::FileExt;
    let complete = || {
        let mut id = [0u8; OFF_CAPACITY + 8];
        file.read_exact_at(&mut id, 0).is_ok()
            && id[OFF_MAGIC..OFF_MAGIC + 8] == MAGIC.to_le_bytes()
            && id[OFF_VERSION..OFF_VERSION + 4] != [0; 4]
            && id[OFF_CAPACITY..OFF_CAPACITY + 8] != [0; 8]
    };
    for _ in 0..2000 {
        if complete() || !map::is_locked(file, LOCK_PRODUCER).unwrap_or(false) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

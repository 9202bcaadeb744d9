//! The single producer: creates (or takes over a dead producer's) ring file and pushes records.
//! `push` never blocks and never makes a system call: a full ring drops the record and counts it.
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{fence, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::RingError;
use super::layout::*;
use super::map::{self, Mapping};
use super::name::path_of;
use super::view::RingView;

#[derive(Debug, Clone, Copy, Default)]
pub struct ProducerOptions {
    /// Leave the file in /dev/shm when the producer is dropped (it is removed otherwise).
    pub keep: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Pushed,
    /// The ring was full; the record was counted in the control block's drop counter.
    Dropped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerStats {
    pub pushed: u64,
    pub dropped: u64,
    pub epoch: u64,
}

pub struct Producer {
    view: RingView,
    path: PathBuf,
    keep: bool,
    epoch: u64,
    /// Oldest cursor of this epoch: a read cursor below it was left by a consumer of an earlier
    /// epoch and must not count as free space.
    base: u64,
    write: u64,
    cached_read: u64,
    seq: u64,
    pushed: u64,
    dropped: u64,
    answered: Option<u64>,
    max_payload: usize,
}

impl Producer {
    /// Creates `/dev/shm/<name>` holding a ring of `capacity` data bytes. A ring left by a dead
    /// producer (our magic and layout, producer lock free) is taken over (in place when the
    /// capacity matches, so attached consumers see the new epoch); a live producer's file is never
    /// touched (`E_QUEUE_BUSY`), nor is any file we cannot prove is a ring (`E_NOT_A_QUEUE`).
    pub fn create(name: &str, capacity: u64, opts: ProducerOptions) -> Result<Self, RingError> {
        let path = path_of(name)?;
        check_capacity(capacity)?;
        // Each round either succeeds or removes a stale file; a rival producer racing us for the
        // name ends the loop with E_QUEUE_BUSY on its lock.
        for _ in 0..8 {
            match map::open_existing(&path) {
                Ok(file) => {
                    if let Some(view) = take_over(file, &path, capacity)? {
                        return Ok(Self::start(view, path, opts, true));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if let Some(p) = Self::create_fresh(name, &path, capacity, opts)? {
                        return Ok(p);
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                    return Err(RingError::NotAQueue {
                        path: path.display().to_string(),
                        why: "it is a symbolic link, which is never followed".into(),
                    })
                }
                Err(e) => return Err(map::io_err("open", &path, e)),
            }
        }
        Err(map::io_err(
            "create",
            &path,
            io::Error::other("the name kept changing under us; is another producer starting?"),
        ))
    }

    /// Makes the ring under a temporary name (a leading '.', which no queue name has), sized, locked
    /// and with its layout written, then links it to the queue's name, which must still be free. So
    /// the name never shows an empty or all-zero file of ours, even if we die half-way: such a file
    /// under a queue's name belongs to someone else and is never taken over (see take_over). None
    /// if another producer took the name meanwhile; dying here leaves only the temporary file.
    fn create_fresh(
        name: &str,
        path: &std::path::Path,
        capacity: u64,
        opts: ProducerOptions,
    ) -> Result<Option<Self>, RingError> {
        let tmp = path.with_file_name(format!(".{name}.{}.new", std::process::id()));
        // Left by a process of our pid that died here: the name is ours by construction.
        let _ = std::fs::remove_file(&tmp);
        sweep_stale_temps(name, path);
        let file = map::create_new(&tmp).map_err(|e| map::io_err("create", &tmp, e))?;
        let made = (|| {
            if !map::try_lock(&file, LOCK_PRODUCER).map_err(|e| map::io_err("lock", &tmp, e))? {
                return Err(map::io_err(
                    "lock",
                    &tmp,
                    io::Error::other("a new file was locked by someone else"),
                ));
            }
            let len = file_size(capacity);
            let f = file.try_clone().map_err(|e| map::io_err("dup", &tmp, e))?;
            f.set_len(len).map_err(|e| map::io_err("resize", &tmp, e))?;
            let m = Mapping::new(f, len as usize, &tmp)?;
            let producer = Self::start(RingView::new(m, capacity), path.to_path_buf(), opts, false);
            match std::fs::hard_link(&tmp, path) {
                Ok(()) => Ok(Some(producer)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
                Err(e) => Err(map::io_err("link", path, e)),
            }
        })();
        // Dropping `file` only now keeps the lock held until the ring has its name.
        let _ = std::fs::remove_file(&tmp);
        drop(file);
        made
    }

    fn start(view: RingView, path: PathBuf, opts: ProducerOptions, reused: bool) -> Self {
        let at = |off| view.at(off);
        let old_epoch = at(OFF_EPOCH).load(Ordering::Acquire);
        at(OFF_EPOCH).store(EPOCH_INITIALIZING, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        // A consumer from the last run may still store its read cursor; start beyond any value
        // it could hold so its late stores cannot look like free space.
        let base = if reused {
            let hi = at(OFF_WRITE)
                .load(Ordering::Relaxed)
                .max(at(OFF_READ).load(Ordering::Relaxed));
            (hi + view.capacity + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
        } else {
            0
        };
        at(OFF_MAGIC).store(MAGIC, Ordering::Relaxed);
        let v = view.map.u32_at(OFF_VERSION);
        v.store(LAYOUT_VERSION, Ordering::Relaxed);
        view.map
            .u32_at(OFF_HEADER_AREA_OFFSET)
            .store(HEADER_AREA_OFFSET as u32, Ordering::Relaxed);
        view.map
            .u32_at(OFF_HEADER_AREA_SIZE)
            .store(HEADER_AREA_SIZE as u32, Ordering::Relaxed);
        view.map
            .u32_at(OFF_PRODUCER_PID)
            .store(std::process::id(), Ordering::Relaxed);
        at(OFF_CAPACITY).store(view.capacity, Ordering::Relaxed);
        at(OFF_DATA_OFFSET).store(DATA_OFFSET as u64, Ordering::Relaxed);
        at(OFF_BASE).store(base, Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        at(OFF_STARTED_NS).store(now, Ordering::Relaxed);
        // A consumer polls the header word at the read cursor: there must be no old record here.
        view.record_word(base).store(0, Ordering::Relaxed);
        at(OFF_WRITE).store(base, Ordering::Relaxed);
        at(OFF_READ).store(base, Ordering::Relaxed);
        at(OFF_PUSHED).store(0, Ordering::Relaxed);
        at(OFF_DROPPED).store(0, Ordering::Relaxed);
        let epoch = new_epoch(now, old_epoch);
        at(OFF_EPOCH).store(epoch, Ordering::Release);
        let max_payload = max_payload(view.capacity);
        Producer {
            view,
            path,
            keep: opts.keep,
            epoch,
            base,
            write: base,
            cached_read: base,
            seq: 0,
            pushed: 0,
            dropped: 0,
            answered: None,
            max_payload,
        }
    }

    /// Appends one record, or drops it (and counts the drop) if the ring is full.
    #[inline]
    pub fn push(&mut self, payload: &[u8]) -> Result<Push, RingError> {
        if self.try_push(payload)? {
            return Ok(Push::Pushed);
        }
        self.mark_loss();
        Ok(Push::Dropped)
    }

    /// Marks a hole in the stream without writing a record: the sequence number a record would
    /// have taken is skipped and counted as a drop, so the consumer sees a gap and resyncs from
    /// the header copy. For losses the payload format cannot express (wire v1 has no gap frame).
    pub fn mark_loss(&mut self) {
        self.seq += 1;
        self.dropped += 1;
        self.view.at(OFF_DROPPED).store(self.dropped, Ordering::Relaxed);
    }

    /// Appends one record if it fits; false (nothing written, nothing counted) if the ring is
    /// full, for producers that would rather wait than drop.
    #[inline]
    pub fn try_push(&mut self, payload: &[u8]) -> Result<bool, RingError> {
        if payload.len() > self.max_payload {
            return Err(RingError::RecordTooLarge {
                len: payload.len(),
                capacity: self.view.capacity,
                max: self.max_payload,
            });
        }
        let need = record_size(payload.len());
        // One header's worth of slack: the word after the record is zeroed, and must be free.
        let used = self.write + need + RECORD_HEADER as u64;
        if used - self.cached_read > self.view.capacity {
            self.cached_read = self
                .view
                .at(OFF_READ)
                .load(Ordering::Acquire)
                .clamp(self.base, self.write);
            if used - self.cached_read > self.view.capacity {
                return Ok(false);
            }
        }
        // Zeroing the next header word ahead of time, a few lines ahead after each push, was
        // tried and dropped: it halved Rust -> Rust throughput in the 250 ns vCPU placement
        // (docs/performance.md) and did not move the hand-off p50.
        let next = self.write + need;
        self.view.record_word(next).store(0, Ordering::Relaxed);
        self.view.put(self.write + RECORD_HEADER as u64, payload);
        let word = u64::from(payload.len() as u32 | RECORD_COMMITTED) | (self.seq << 32);
        self.view.record_word(self.write).store(word, Ordering::Release);
        self.write = next;
        self.seq += 1;
        self.pushed += 1;
        self.view.at(OFF_WRITE).store(self.write, Ordering::Release);
        self.view.at(OFF_PUSHED).store(self.pushed, Ordering::Relaxed);
        Ok(true)
    }

    /// Pushes every frame of a batch framed as `u32 LE length + payload`; returns how many were
    /// dropped. A malformed batch is rejected before anything is pushed.
    pub fn push_framed(&mut self, framed: &[u8]) -> Result<u32, RingError> {
        let mut off = 0;
        while off < framed.len() {
            let len = frame_len(framed, off)?;
            if len > self.max_payload {
                return Err(RingError::RecordTooLarge {
                    len,
                    capacity: self.view.capacity,
                    max: self.max_payload,
                });
            }
            off += 4 + len;
        }
        let mut dropped = 0;
        let mut off = 0;
        while off < framed.len() {
            let len = frame_len(framed, off)?;
            if self.push(&framed[off + 4..off + 4 + len])? == Push::Dropped {
                dropped += 1;
            }
            off += 4 + len;
        }
        Ok(dropped)
    }

    /// True when a consumer asked for a fresh header copy (after attaching or losing records)
    /// that `set_header` has not answered yet. One load of a rarely written cache line.
    #[inline]
    pub fn header_wanted(&self) -> bool {
        self.answered != Some(self.view.at(OFF_HEADER_REQUEST).load(Ordering::Acquire))
    }

    /// Stores the codec header and resume state that hold for the next record pushed.
    pub fn set_header(&mut self, header: &[u8], state: &[u8]) -> Result<(), RingError> {
        let len = header.len() + state.len();
        if len > HEADER_AREA_SIZE {
            return Err(RingError::HeaderTooLarge {
                len,
                max: HEADER_AREA_SIZE,
            });
        }
        let request = self.view.at(OFF_HEADER_REQUEST).load(Ordering::Acquire);
        self.view
            .write_header(self.epoch, self.seq, self.write, header, state);
        self.answered = Some(request);
        Ok(())
    }

    pub fn stats(&self) -> ProducerStats {
        ProducerStats {
            pushed: self.pushed,
            dropped: self.dropped,
            epoch: self.epoch,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Bytes pushed and not yet consumed (one load of the consumer's cache line: not for every
    /// push).
    pub fn backlog(&self) -> u64 {
        let read = self.view.at(OFF_READ).load(Ordering::Acquire);
        self.write - read.clamp(self.base, self.write)
    }

    /// True while a live process holds the consumer lock (a system call: not for every push).
    /// Unlike consumer_pid this is right even when the consumer died without detaching.
    pub fn consumer_attached(&self) -> bool {
        map::is_locked(self.view.map.file(), LOCK_CONSUMER).unwrap_or(false)
    }

    /// Pid of the attached consumer as it wrote it, 0 if none.
    pub fn consumer_pid(&self) -> u32 {
        self.view.map.u32_at(OFF_CONSUMER_PID).load(Ordering::Relaxed)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        // Tell attached consumers this run is over before the name goes away.
        self.view.at(OFF_EPOCH).store(EPOCH_CLOSED, Ordering::Release);
        if !self.keep && map::still_named(&self.path, self.view.map.file()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A temporary file is stale only this long after its last change: one younger may be a rival
/// producer's, between creating and locking it.
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(10);

/// Best effort: removes the temporary files (`.<name>.<pid>.new`) of producers of this queue that
/// died while creating it, so a crash loop cannot fill /dev/shm (a ring can be large). Only a
/// regular file named exactly so, with its producer lock free, unchanged for STALE_TEMP_AGE.
fn sweep_stale_temps(name: &str, path: &std::path::Path) {
    let Some(dir) = path.parent() else { return };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str() else { continue };
        let Some(pid) = n.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".new")) else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let temp = entry.path();
        let Ok(file) = map::open_existing(&temp) else {
            continue;
        };
        let stale = file.metadata().is_ok_and(|m| {
            m.file_type().is_file()
                && m.modified()
                    .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= STALE_TEMP_AGE))
        });
        if stale
            && map::is_locked(&file, LOCK_PRODUCER).is_ok_and(|locked| !locked)
            && map::still_named(&temp, &file)
        {
            let _ = std::fs::remove_file(&temp);
        }
    }
}

fn frame_len(framed: &[u8], off: usize) -> Result<usize, RingError> {
    let Some(b) = framed.get(off..off + 4) else {
        return Err(RingError::BadFrame {
            offset: off,
            why: "batch ends inside a length prefix",
        });
    };
    let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if framed.len() - off - 4 < len {
        return Err(RingError::BadFrame {
            offset: off,
            why: "frame length runs past the end of the batch",
        });
    }
    Ok(len)
}

/// A value that differs from the last run's and from the two reserved values.
fn new_epoch(now_ns: u64, old: u64) -> u64 {
    let mut e = now_ns ^ ((std::process::id() as u64) << 40);
    if e == old {
        e = e.wrapping_add(1);
    }
    if e == EPOCH_INITIALIZING || e == EPOCH_CLOSED {
        e = 1;
    }
    e
}

/// Decides what to do with an existing file at the queue's path. Some(view) when we took over a
/// dead producer's ring of the same size in place; None when we removed a stale file (the caller
/// then creates a fresh one).
fn take_over(
    file: std::fs::File,
    path: &std::path::Path,
    capacity: u64,
) -> Result<Option<RingView>, RingError> {
    let p = || path.display().to_string();
    let meta = file.metadata().map_err(|e| map::io_err("stat", path, e))?;
    if !meta.file_type().is_file() {
        return Err(RingError::NotAQueue {
            path: p(),
            why: "it is not a regular file".into(),
        });
    }
    let size = meta.len();
    let m = if size >= CONTROL_SIZE as u64 {
        let m = Mapping::new(file, CONTROL_SIZE, path)?;
        let magic = m.u64_at(OFF_MAGIC).load(Ordering::Acquire);
        // All zeros is not ours either: a producer names a ring only once its layout is written
        // (create_fresh), so another program may own such a file.
        if magic != MAGIC {
            return Err(RingError::NotAQueue {
                path: p(),
                why: "its magic number is not PERPRING".into(),
            });
        }
        m
    } else if size == 0 {
        // Versions before create_fresh could leave this after dying between create and resize;
        // now only another program can, and we cannot tell which: refuse, never delete.
        return Err(RingError::NotAQueue {
            path: p(),
            why: "it is empty, and a perp-signal producer never leaves an empty file".into(),
        });
    } else {
        return Err(RingError::NotAQueue {
            path: p(),
            why: format!("it is only {size} bytes long"),
        });
    };
    let same_layout = m.u32_at(OFF_VERSION).load(Ordering::Relaxed) == LAYOUT_VERSION
        && m.u64_at(OFF_CAPACITY).load(Ordering::Relaxed) == capacity
        && size == file_size(capacity);
    let file = m.file().try_clone().map_err(|e| map::io_err("dup", path, e))?;
    if !map::try_lock(&file, LOCK_PRODUCER).map_err(|e| map::io_err("lock", path, e))? {
        let pid = m.u32_at(OFF_PRODUCER_PID).load(Ordering::Relaxed);
        return Err(RingError::ProducerBusy { path: p(), pid });
    }
    if !same_layout && m.u32_at(OFF_VERSION).load(Ordering::Relaxed) == LAYOUT_VERSION {
        // Consumers still mapping the old file learn that it is finished.
        m.u64_at(OFF_EPOCH).store(EPOCH_CLOSED, Ordering::Release);
    }
    if same_layout {
        let len = file_size(capacity) as usize;
        return Ok(Some(RingView::new(Mapping::new(file, len, path)?, capacity)));
    }
    if map::still_named(path, &file) {
        std::fs::remove_file(path).map_err(|e| map::io_err("remove stale", path, e))?;
    }
    Ok(None)
}

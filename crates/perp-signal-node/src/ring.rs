//! Binding of the /dev/shm ring: `RingProducer` and `RingConsumer` wrap the core's types.
//! Conversion only; popInto returns a number so the hot path allocates nothing.
//!
//! The consumer can also hand JS the mapping itself (`mapping()`) and a small state block
//! (`stateBlock()`), so ts/clients/shm.ts pops ordinary records with no N-API call. The state
//! block is the single place where the read position lives between calls: every method here
//! that uses or moves the position first takes over what JS did (`sync_in`) and publishes the
//! result before returning (`sync_out`), so the two readers cannot disagree.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::{ArrayBuffer, BigInt, Buffer, BufferSlice, Either};
use napi::{Env, Result};
use napi_derive::napi;
use perp_signal_core::ring::layout::{EPOCH_CLOSED, EPOCH_INITIALIZING};
use perp_signal_core::ring::{
    Consumer, HeaderSnapshot, Pop, Producer, ProducerOptions, Push, RingError, StartAt,
};

use crate::error;

fn ring_err(env: &Env, e: RingError) -> napi::Error {
    error::throw(env, e.code(), &e.to_string())
}

fn closed(env: &Env, what: &str) -> napi::Error {
    error::throw(
        env,
        "E_CLOSED",
        &format!("this {what} was closed; open a new one"),
    )
}

#[napi(object)]
pub struct RingProducerStats {
    pub pushed: f64,
    pub dropped: f64,
    pub epoch: BigInt,
}

#[napi]
pub struct RingProducer {
    inner: Option<Producer>,
}

#[napi]
impl RingProducer {
    #[napi(factory)]
    pub fn create(env: Env, name: String, capacity: f64, keep: bool) -> Result<Self> {
        if !(capacity.is_finite() && capacity >= 0.0 && capacity.fract() == 0.0) {
            return Err(ring_err(
                &env,
                RingError::BadCapacity {
                    capacity: capacity.max(0.0) as u64,
                },
            ));
        }
        let p = Producer::create(&name, capacity as u64, ProducerOptions { keep })
            .map_err(|e| ring_err(&env, e))?;
        Ok(RingProducer { inner: Some(p) })
    }

    fn get(&mut self, env: &Env) -> Result<&mut Producer> {
        self.inner.as_mut().ok_or_else(|| closed(env, "producer"))
    }

    /// Pushes one record; false when the ring was full and it was dropped (and counted).
    #[napi]
    pub fn push(&mut self, env: Env, payload: &[u8]) -> Result<bool> {
        let p = self.get(&env)?;
        let r = p.push(payload).map_err(|e| ring_err(&env, e))?;
        Ok(r == Push::Pushed)
    }

    /// Pushes each frame of a u32LE-framed batch as one record and says whether a consumer waits
    /// for a header copy, in one call (every N-API call costs ~0.2 µs or more of glue): frames
    /// dropped × 2, plus 1 when a consumer waits for a header copy.
    #[napi(js_name = "publishFramed")]
    pub fn publish_framed(&mut self, env: Env, framed: &[u8]) -> Result<u32> {
        let p = self.get(&env)?;
        let dropped = p.push_framed(framed).map_err(|e| ring_err(&env, e))?;
        Ok(dropped.saturating_mul(2) | u32::from(p.header_wanted()))
    }

    /// Skips one sequence number (counted as a drop): consumers see a loss and resync.
    #[napi(js_name = "markLoss")]
    pub fn mark_loss(&mut self, env: Env) -> Result<()> {
        self.get(&env)?.mark_loss();
        Ok(())
    }

    #[napi(js_name = "headerWanted")]
    pub fn header_wanted(&self) -> bool {
        self.inner.as_ref().is_some_and(|p| p.header_wanted())
    }

    #[napi(js_name = "setHeader")]
    pub fn set_header(&mut self, env: Env, header: &[u8], state: &[u8]) -> Result<()> {
        let p = self.get(&env)?;
        p.set_header(header, state).map_err(|e| ring_err(&env, e))
    }

    #[napi]
    pub fn stats(&mut self, env: Env) -> Result<RingProducerStats> {
        let s = self.get(&env)?.stats();
        Ok(RingProducerStats {
            pushed: s.pushed as f64,
            dropped: s.dropped as f64,
            epoch: BigInt::from(s.epoch),
        })
    }

    /// Pid of the attached consumer, 0 if none (a plain load from the control block).
    #[napi(js_name = "consumerPid")]
    pub fn consumer_pid(&self) -> u32 {
        self.inner.as_ref().map_or(0, |p| p.consumer_pid())
    }

    /// True while a live consumer holds the ring (a system call: not per message).
    #[napi(js_name = "consumerAttached")]
    pub fn consumer_attached(&self) -> bool {
        self.inner.as_ref().is_some_and(|p| p.consumer_attached())
    }

    /// Marks the ring closed for consumers and removes the file unless it was created with keep.
    #[napi]
    pub fn close(&mut self) {
        self.inner = None;
    }
}

#[napi(object)]
pub struct RingHeader {
    pub epoch: BigInt,
    pub seq: f64,
    pub pos: f64,
    pub header: Buffer,
    pub state: Buffer,
}

impl From<HeaderSnapshot> for RingHeader {
    fn from(s: HeaderSnapshot) -> Self {
        RingHeader {
            epoch: BigInt::from(s.epoch),
            seq: s.seq as f64,
            pos: s.pos as f64,
            header: s.header.into(),
            state: s.state.into(),
        }
    }
}

#[napi(object)]
pub struct RingConsumerStats {
    pub epoch: BigInt,
    pub lost: f64,
    pub popped: f64,
    pub producer_pushed: f64,
    pub producer_dropped: f64,
    pub producer_pid: u32,
    pub backlog: f64,
}

/// What the last negative popInto result was about.
#[napi(object)]
pub struct RingEvent {
    /// `lost`, `epoch` or `closed`.
    pub kind: String,
    pub count: f64,
    pub epoch: BigInt,
}

/// popInto results below zero; keep in step with ts/clients/shm.ts.
const EMPTY: i32 = -1;
const LOST: i32 = -2;
const EPOCH: i32 = -3;
const CLOSED: i32 = -4;

// Slots of the state block shared with the JS fast path; keep in step with FastRing in
// ts/clients/shm-fast.ts. f64 slots unless said otherwise.
const ST_READ: usize = 0;
/// Sequence number of the next record; -1 while unknown.
const ST_EXPECTED: usize = 1;
/// Records JS popped since the last hand-over.
const ST_POPPED: usize = 2;
const ST_LAST_SEQ: usize = 3;
/// u64: the epoch the consumer follows.
const ST_EPOCH: usize = 4;
/// 1: JS may pop ordinary records itself; 0: it must call popInto.
const ST_FAST: usize = 5;
const ST_CAPACITY: usize = 6;
const ST_MAX_PAYLOAD: usize = 7;
const ST_SLOTS: usize = 8;
/// Integers up to this are exact in an f64 (JS number).
const EXACT_F64: u64 = 1 << 53;

/// Word-sized cells JS reads and writes through a Float64Array / BigUint64Array. Only the JS
/// thread touches them (JS code and this binding's methods, never at the same time), so relaxed
/// atomics are only there to make the foreign writes legal to observe from Rust.
struct StateBlock([AtomicU64; ST_SLOTS]);

impl StateBlock {
    fn get(&self, slot: usize) -> f64 {
        f64::from_bits(self.0[slot].load(Ordering::Relaxed))
    }
    fn set(&self, slot: usize, v: f64) {
        self.0[slot].store(v.to_bits(), Ordering::Relaxed);
    }
}

#[napi]
pub struct RingConsumer {
    inner: Option<Consumer>,
    last_event: Option<Pop>,
    last_seq: f64,
    state: Arc<StateBlock>,
    mapping_shared: bool,
    state_shared: bool,
}

#[napi]
impl RingConsumer {
    #[napi(factory)]
    pub fn open(env: Env, name: String, latest: bool) -> Result<Self> {
        let start = if latest { StartAt::Latest } else { StartAt::Oldest };
        let c = Consumer::open(&name, start).map_err(|e| ring_err(&env, e))?;
        let state = StateBlock(std::array::from_fn(|_| AtomicU64::new(0)));
        state.set(ST_CAPACITY, c.capacity() as f64);
        state.set(ST_MAX_PAYLOAD, c.max_payload() as f64);
        let mut rc = RingConsumer {
            inner: Some(c),
            last_event: None,
            last_seq: -1.0,
            state: Arc::new(state),
            mapping_shared: false,
            state_shared: false,
        };
        rc.sync_out();
        Ok(rc)
    }

    fn get(&mut self, env: &Env) -> Result<&mut Consumer> {
        self.inner.as_mut().ok_or_else(|| closed(env, "consumer"))
    }

    /// Takes over the records JS popped since the last call (see the module comment).
    fn sync_in(&mut self, env: &Env) -> Result<()> {
        let st = Arc::clone(&self.state);
        let popped = st.get(ST_POPPED);
        if popped == 0.0 {
            return Ok(());
        }
        let c = self.get(env)?;
        st.set(ST_POPPED, 0.0);
        let (read, expected) = (st.get(ST_READ), st.get(ST_EXPECTED));
        let r = if read >= 0.0 && expected >= 0.0 && popped > 0.0 {
            c.advance_to(read as u64, expected as u64, popped as u64)
        } else {
            Err(RingError::Corrupt {
                pos: c.position().0,
                why: "the JS reader left an impossible state",
            })
        };
        if let Err(e) = r {
            // JS stops until the next successful call republishes our own position, which
            // stands: the refused pops are not counted as consumed.
            st.set(ST_FAST, 0.0);
            return Err(ring_err(env, e));
        }
        self.last_seq = st.get(ST_LAST_SEQ);
        Ok(())
    }

    /// Publishes our position for JS, and whether JS may pop the next ordinary record itself.
    fn sync_out(&mut self) {
        let st = Arc::clone(&self.state);
        let Some(c) = self.inner.as_mut() else {
            st.set(ST_FAST, 0.0);
            return;
        };
        let (read, expected) = c.position();
        let epoch = c.epoch();
        st.set(ST_READ, read as f64);
        st.set(ST_EXPECTED, expected.map_or(-1.0, |e| e as f64));
        st.set(ST_LAST_SEQ, self.last_seq);
        st.0[ST_EPOCH].store(epoch, Ordering::Relaxed);
        // JS handles only the plain case: known sequence, a live epoch, exact numbers. All else
        // (attach, loss, restart, shutdown) comes back here.
        let fast = expected.is_some_and(|e| e < EXACT_F64)
            && read < EXACT_F64 / 2
            && epoch != EPOCH_INITIALIZING
            && epoch != EPOCH_CLOSED;
        st.set(ST_FAST, if fast { 1.0 } else { 0.0 });
    }

    /// The whole mapped ring file as an ArrayBuffer over the shared memory itself (no copy), for
    /// the JS fast path; null if this runtime cannot wrap external memory (it would copy) or it
    /// was handed out already. The buffer keeps the file mapped after close() until it is
    /// garbage-collected.
    #[napi]
    pub fn mapping<'env>(&mut self, env: &'env Env) -> Result<Option<ArrayBuffer<'env>>> {
        if self.mapping_shared {
            return Ok(None);
        }
        let region = self.get(env)?.shared_region();
        let (ptr, len) = (region.as_ptr(), region.len());
        // SAFETY: `ptr` is valid for `len` bytes for as long as `region` lives; the finalizer
        // owns that Arc, so the mapping outlives every JS view of the buffer, whatever happens
        // to this consumer (close() drops only our own owner). JS may read and write the bytes
        // concurrently with the producer: that is the ring protocol, not a Rust aliasing
        // question, since Rust only reaches this memory through atomics and raw copies.
        let ab = unsafe { ArrayBuffer::from_external(env, ptr, len, region, |_, r| drop(r)) }?;
        self.mapping_shared = true;
        // A runtime without external buffers gets a copy: a stale snapshot, useless to poll.
        Ok((ab.as_ptr() == ptr.cast_const()).then_some(ab))
    }

    /// The state block (8 words, see ST_*) as an ArrayBuffer; null if handed out already.
    #[napi(js_name = "stateBlock")]
    pub fn state_block<'env>(&mut self, env: &'env Env) -> Result<Option<ArrayBuffer<'env>>> {
        if self.state_shared {
            return Ok(None);
        }
        let st = Arc::clone(&self.state);
        let ptr = st.0.as_ptr() as *mut u8;
        let len = std::mem::size_of::<StateBlock>();
        // SAFETY: the block is ST_SLOTS aligned words on the heap, kept alive by the Arc the
        // finalizer owns; it is only accessed from the JS thread (JS code or our methods).
        let ab = unsafe { ArrayBuffer::from_external(env, ptr, len, st, |_, s| drop(s)) }?;
        self.state_shared = true;
        Ok((ab.as_ptr() == ptr.cast_const()).then_some(ab))
    }

    fn code(&mut self, pop: Pop) -> i32 {
        match pop {
            Pop::Record { len, seq } => {
                self.last_seq = seq as f64;
                len as i32
            }
            Pop::Empty => EMPTY,
            other => {
                self.last_event = Some(other);
                match other {
                    Pop::Lost { .. } => LOST,
                    Pop::Epoch { .. } => EPOCH,
                    _ => CLOSED,
                }
            }
        }
    }

    /// Copies the next record into `buf`: its length, or -1 empty, -2 lost, -3 new epoch,
    /// -4 closed (see lastEvent()). No allocation, no system call. While empty, polls again up to
    /// `spin_polls` times in Rust before returning -1 (cheaper than a call per poll from JS).
    #[napi(js_name = "popInto")]
    pub fn pop_into(&mut self, env: Env, mut buf: BufferSlice, spin_polls: Option<u32>) -> Result<i32> {
        self.sync_in(&env)?;
        let c = self.get(&env)?;
        let pop = c.pop_into_spin(&mut buf, spin_polls.unwrap_or(0));
        let r = pop.map(|p| self.code(p));
        self.sync_out();
        r.map_err(|e| ring_err(&env, e))
    }

    /// The next record as a new Buffer, or the popInto code when there is none.
    #[napi]
    pub fn pop(&mut self, env: Env) -> Result<Either<Buffer, i32>> {
        self.sync_in(&env)?;
        let c = self.get(&env)?;
        let mut buf = vec![0u8; c.next_len().unwrap_or(0)];
        let pop = c.pop_into(&mut buf);
        let pop = pop
            .inspect_err(|_| self.sync_out())
            .map_err(|e| ring_err(&env, e))?;
        let r = match pop {
            Pop::Record { len, .. } => {
                self.code(pop);
                buf.truncate(len);
                Either::A(buf.into())
            }
            other => Either::B(self.code(other)),
        };
        self.sync_out();
        Ok(r)
    }

    /// Sequence number of the last record popped, -1 before the first.
    #[napi(js_name = "lastSeq")]
    pub fn last_seq(&mut self, env: Env) -> Result<f64> {
        if self.inner.is_some() {
            self.sync_in(&env)?;
        }
        Ok(self.last_seq)
    }

    #[napi(js_name = "lastEvent")]
    pub fn last_event(&self) -> Option<RingEvent> {
        let (kind, count, epoch) = match self.last_event? {
            Pop::Lost { count } => ("lost", count as f64, 0),
            Pop::Epoch { epoch } => ("epoch", 0.0, epoch),
            Pop::Closed => ("closed", 0.0, 0),
            _ => return None,
        };
        Some(RingEvent {
            kind: kind.into(),
            count,
            epoch: BigInt::from(epoch),
        })
    }

    /// True when the file's epoch is no longer ours (restart or shutdown); one load, no call.
    #[napi(js_name = "epochChanged")]
    pub fn epoch_changed(&self) -> bool {
        self.inner.as_ref().is_some_and(|c| c.epoch_changed())
    }

    #[napi(js_name = "requestHeader")]
    pub fn request_header(&mut self, env: Env) -> Result<()> {
        self.get(&env)?.request_header();
        Ok(())
    }

    /// The producer's header copy for this epoch, without moving.
    #[napi]
    pub fn header(&mut self, env: Env) -> Result<Option<RingHeader>> {
        Ok(self.get(&env)?.header().map(RingHeader::from))
    }

    /// Reads the header copy and, if it holds at or after our position, jumps there (counting
    /// the skipped records as lost) and returns it; null means: request one and try again later.
    #[napi(js_name = "resyncFromHeader")]
    pub fn resync_from_header(&mut self, env: Env) -> Result<Option<RingHeader>> {
        self.sync_in(&env)?;
        let c = self.get(&env)?;
        let r = match c.header() {
            Some(s) if c.resync(&s) => Some(s.into()),
            _ => None,
        };
        self.sync_out();
        Ok(r)
    }

    #[napi]
    pub fn stats(&mut self, env: Env) -> Result<RingConsumerStats> {
        self.sync_in(&env)?;
        let s = self.get(&env)?.stats();
        Ok(RingConsumerStats {
            epoch: BigInt::from(s.epoch),
            lost: s.lost as f64,
            popped: s.popped as f64,
            producer_pushed: s.producer_pushed as f64,
            producer_dropped: s.producer_dropped as f64,
            producer_pid: s.producer_pid,
            backlog: s.backlog as f64,
        })
    }

    /// True while a live producer holds the ring (a system call: idle path only).
    #[napi(js_name = "producerAlive")]
    pub fn producer_alive(&mut self, env: Env) -> Result<bool> {
        Ok(self.get(&env)?.producer_alive())
    }

    /// True when the queue's name now points at another file or none (idle path only).
    #[napi]
    pub fn replaced(&mut self, env: Env) -> Result<bool> {
        Ok(self.get(&env)?.replaced())
    }

    #[napi]
    pub fn close(&mut self) {
        self.inner = None;
        self.sync_out();
    }
}

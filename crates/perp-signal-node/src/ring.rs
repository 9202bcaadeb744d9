//! Binding of the /dev/shm ring: `RingProducer` and `RingConsumer` wrap the core's types.
//! Conversion only; popInto returns a number so the hot path allocates nothing.
use napi::bindgen_prelude::{BigInt, Buffer, BufferSlice, Either};
use napi::{Env, Result};
use napi_derive::napi;
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

    /// Pushes each frame of a u32LE-framed batch as one record; returns how many were dropped.
    #[napi(js_name = "pushFramed")]
    pub fn push_framed(&mut self, env: Env, framed: &[u8]) -> Result<u32> {
        let p = self.get(&env)?;
        p.push_framed(framed).map_err(|e| ring_err(&env, e))
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

#[napi]
pub struct RingConsumer {
    inner: Option<Consumer>,
    last_event: Option<Pop>,
    last_seq: f64,
}

#[napi]
impl RingConsumer {
    #[napi(factory)]
    pub fn open(env: Env, name: String, latest: bool) -> Result<Self> {
        let start = if latest { StartAt::Latest } else { StartAt::Oldest };
        let c = Consumer::open(&name, start).map_err(|e| ring_err(&env, e))?;
        Ok(RingConsumer {
            inner: Some(c),
            last_event: None,
            last_seq: -1.0,
        })
    }

    fn get(&mut self, env: &Env) -> Result<&mut Consumer> {
        self.inner.as_mut().ok_or_else(|| closed(env, "consumer"))
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
        let c = self.get(&env)?;
        let pop = c
            .pop_into_spin(&mut buf, spin_polls.unwrap_or(0))
            .map_err(|e| ring_err(&env, e))?;
        Ok(self.code(pop))
    }

    /// The next record as a new Buffer, or the popInto code when there is none.
    #[napi]
    pub fn pop(&mut self, env: Env) -> Result<Either<Buffer, i32>> {
        let c = self.get(&env)?;
        let mut buf = vec![0u8; c.next_len().unwrap_or(0)];
        let pop = c.pop_into(&mut buf).map_err(|e| ring_err(&env, e))?;
        Ok(match pop {
            Pop::Record { len, .. } => {
                self.code(pop);
                buf.truncate(len);
                Either::A(buf.into())
            }
            other => Either::B(self.code(other)),
        })
    }

    /// Sequence number of the last record popped, -1 before the first.
    #[napi(js_name = "lastSeq")]
    pub fn last_seq(&self) -> f64 {
        self.last_seq
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
        let c = self.get(&env)?;
        Ok(match c.header() {
            Some(s) if c.resync(&s) => Some(s.into()),
            _ => None,
        })
    }

    #[napi]
    pub fn stats(&mut self, env: Env) -> Result<RingConsumerStats> {
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
    }
}

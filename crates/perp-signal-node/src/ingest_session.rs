//! The forwarder's per-read call, `ingestBound()`, with no arguments at all.
//!
//! Why: napi-rs's generated glue costs ~190 ns for a call that takes any argument (callback info,
//! a borrow scope) and ~170 ns more for a class method (unwrap, identity check, a global borrow
//! table), plus ~40 ns per typed array and ~300 ns to hand back a new Buffer; the work itself,
//! for the one frame a socket read holds at 10k msgs/s, is ~50 ns. A free function without
//! arguments skips all of that glue (~40 ns). So the arrays it works on are given once
//! (`NativeEncoder.bindIngest`) and kept here, and every call reads its request from, and writes
//! its results to, the `io` array (layout below) and the caller's output buffer.
//!
//! Which session a call runs: the one bound last on this thread. A caller may not be that one
//! (another encoder, or a second copy of the library, bound since): each call's request flag
//! (`io[REQUEST]`) is set by the caller just before the call and cleared by the run, so a session
//! only ever runs on its own caller's request; otherwise the call returns `NOT_BOUND` having done
//! nothing, and the caller binds and calls again.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::rc::Rc;

use napi::bindgen_prelude::{Float64Array, Uint32Array, Uint8Array};
use napi::{Error, Result, Status};
use napi_derive::napi;
use perp_signal_core::ingest::{self, Assets, Frames, Stop};
use perp_signal_core::symbol_index::SymbolIndex;

use crate::codec::Enc;

/// `io` slots. In: set by the caller before each call. Out: written by the run.
pub const REQUEST: usize = 0;
pub const FROM: usize = 1;
pub const COUNT: usize = 2;
pub const OUT_AT: usize = 3;
pub const CONSUMED: usize = 4;
pub const STOP: usize = 5;
pub const OUT_LEN: usize = 6;
/// First slot of the per-trade meta: 3 f64 per consumed frame (asset, tradeId, tradeTime).
pub const META: usize = 8;

/// `ingestBound()` results.
pub const RAN: u32 = 0;
pub const NOT_BOUND: u32 = 1;

/// The `io` slots, `ingestBound()`'s results and the stop names, for `Encoder.ingest` to read once
/// at load: one definition of the protocol, and a stale addon beside newer JS is caught there.
#[napi(object)]
pub struct IngestLayout {
    pub request: u32,
    pub from: u32,
    pub count: u32,
    pub out_at: u32,
    pub consumed: u32,
    pub stop: u32,
    pub out_len: u32,
    pub meta: u32,
    pub ran: u32,
    pub not_bound: u32,
    /// Room `run_within` wants per frame beyond its JSON length (core `ingest::FRAME_SLACK`), for
    /// `Encoder.ingest` to size its output slab by the same number.
    pub frame_slack: u32,
    /// Stop names by stop code: "end", then core `ingest::Irregular` by `code()`. The other codes
    /// (`STOP_META_FULL`, `STOP_OUT_FULL`) mean "room ran out, call again": "end" to the caller.
    pub stops: Vec<String>,
}

#[napi(js_name = "ingestLayout")]
pub fn ingest_layout() -> IngestLayout {
    let slot = |s: usize| s as u32;
    IngestLayout {
        request: slot(REQUEST),
        from: slot(FROM),
        count: slot(COUNT),
        out_at: slot(OUT_AT),
        consumed: slot(CONSUMED),
        stop: slot(STOP),
        out_len: slot(OUT_LEN),
        meta: slot(META),
        ran: RAN,
        not_bound: NOT_BOUND,
        frame_slack: ingest::FRAME_SLACK as u32,
        stops: std::iter::once("end")
            .chain(ingest::Irregular::ALL.iter().map(|k| k.name()))
            .map(String::from)
            .collect(),
    }
}

/// Stop codes written to `io[STOP]`: 0 = every frame consumed, 1.. = `ingest::Irregular::code`,
/// then these two (call again: the next call continues where this one stopped).
pub const STOP_META_FULL: f64 = 255.0;
pub const STOP_OUT_FULL: f64 = 254.0;

/// The JS arrays a session works on (see `NativeEncoder.bindIngest`).
pub struct Arrays {
    pub pool: Uint8Array,
    pub ends: Uint32Array,
    pub last_ids: Float64Array,
    pub blocked: Uint8Array,
    pub io: Float64Array,
    pub out: Uint8Array,
}

pub struct Session {
    enc: Rc<RefCell<Enc>>,
    symbols: Rc<SymbolIndex>,
    a: Arrays,
    /// Encoded frames of the current call before they are copied to `out` (reused).
    scratch: Vec<u8>,
}

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

fn invalid(msg: String) -> Error {
    Error::new(Status::InvalidArg, msg)
}

/// Byte range of a typed array's memory, for the overlap check.
fn span<T>(s: &[T]) -> (usize, usize) {
    let start = s.as_ptr() as usize;
    (start, start + std::mem::size_of_val(s))
}

impl Session {
    /// Checks the arrays and makes this the session `ingestBound()` runs.
    pub fn bind(enc: Rc<RefCell<Enc>>, symbols: Rc<SymbolIndex>, a: Arrays) -> Result<()> {
        let Arrays {
            pool,
            ends,
            last_ids,
            blocked,
            io,
            out,
        } = &a;
        ingest::check_asset_arrays(symbols.len(), last_ids.len(), blocked.len())
            .map_err(|e| invalid(e.to_string()))?;
        if io.len() < META {
            return Err(invalid(format!(
                "the ingest io array needs at least {META} slots, got {}",
                io.len()
            )));
        }
        // The run writes last ids, io and out through exclusive slices while it reads the others:
        // no two of them may share memory.
        let spans = [
            span(pool),
            span(ends),
            span(last_ids),
            span(blocked),
            span(io),
            span(out),
        ];
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                if a.0 < b.1 && b.0 < a.1 {
                    return Err(invalid(
                        "the ingest arrays must not share memory (pool, ends, last ids, blocked, io, out)"
                            .into(),
                    ));
                }
            }
        }
        let session = Session {
            enc,
            symbols,
            a,
            scratch: Vec::with_capacity(4096),
        };
        SESSION.with(|s| {
            let mut slot = s
                .try_borrow_mut()
                .map_err(|_| invalid("ingest session is in use".into()))?;
            *slot = Some(session);
            Ok(())
        })
    }

    fn run(&mut self) -> Result<u32> {
        // SAFETY: JS runs on this thread only, and not while this native call runs, so nothing
        // else reads or writes these arrays until we return (the caller refuses arrays over a
        // SharedArrayBuffer, the one kind another thread could write meanwhile); the references taken at bind keep
        // their memory alive (typed arrays' memory does not move once napi has read its address);
        // bind checked that the arrays do not overlap, so the exclusive slices do not alias each
        // other or the shared ones. The one caller (ts/codec/encoder.ts `Encoder.ingest`) checks
        // before every call that each bound array is still the same object with the same byte
        // length, and binds again otherwise: a buffer detached since (transferred to a worker)
        // reads as length 0, so its old address is never used.
        let io = unsafe { self.a.io.as_mut() };
        if io[REQUEST] != 1.0 {
            return Ok(NOT_BOUND);
        }
        io[REQUEST] = 0.0;
        let (head, meta) = io.split_at_mut(META);
        let from = index(head[FROM], "from")?;
        let count = index(head[COUNT], "count")?;
        let out_at = index(head[OUT_AT], "output offset")?;
        let ends: &[u32] = &self.a.ends;
        let ends = ends.get(..count).ok_or_else(|| {
            invalid(format!(
                "count {count} is past the {} frame ends given",
                ends.len()
            ))
        })?;
        // SAFETY: as above.
        let out = unsafe { self.a.out.as_mut() };
        let room = out.len().checked_sub(out_at).ok_or_else(|| {
            invalid(format!(
                "output offset {out_at} is past the {}-byte output buffer",
                out.len()
            ))
        })?;
        let mut enc = self
            .enc
            .try_borrow_mut()
            .map_err(|_| invalid("the encoder is in use".into()))?;
        // SAFETY: as above.
        let last_ids = unsafe { self.a.last_ids.as_mut() };
        let mut assets = Assets {
            symbols: &self.symbols,
            last_ids,
            blocked: &self.a.blocked,
        };
        let frames = Frames {
            pool: &self.a.pool,
            ends,
        };
        self.scratch.clear();
        let r = ingest::run_within(
            &mut *enc,
            &frames,
            from,
            &mut assets,
            &mut self.scratch,
            room,
            meta,
        )
        .map_err(|e| invalid(e.to_string()))?;
        let len = self.scratch.len();
        // run_within kept the output within `room`.
        out.get_mut(out_at..out_at + len)
            .ok_or_else(|| invalid("ingest output overran its room".into()))?
            .copy_from_slice(&self.scratch);
        head[CONSUMED] = r.consumed as f64;
        head[STOP] = match r.stop {
            Stop::End => 0.0,
            Stop::Irregular(why) => f64::from(why.code()),
            Stop::MetaFull => STOP_META_FULL,
            Stop::OutFull => STOP_OUT_FULL,
        };
        head[OUT_LEN] = len as f64;
        Ok(RAN)
    }
}

fn index(v: f64, what: &str) -> Result<usize> {
    if v >= 0.0 && v.fract() == 0.0 && v <= u32::MAX as f64 {
        Ok(v as usize)
    } else {
        Err(invalid(format!(
            "ingest {what} must be a small non-negative integer, got {v}"
        )))
    }
}

/// Runs the bound session on the request in its `io` array (see the module doc). Returns `RAN`
/// (results in `io` and the output buffer) or `NOT_BOUND` (nothing done: bind, call again).
/// Throws (InvalidArg) only for an inconsistent request, then nothing changed.
#[napi(js_name = "ingestBound")]
pub fn ingest_bound() -> Result<u32> {
    SESSION.with(|s| {
        let mut slot = s
            .try_borrow_mut()
            .map_err(|_| invalid("ingest session is in use".into()))?;
        match slot.as_mut() {
            Some(session) => session.run(),
            None => Ok(NOT_BOUND),
        }
    })
}

//! Binding of the wire codec: conversion only. Batches cross the boundary as packed bytes (one
//! native call per batch, no per-field object access); see ts/codec/packed.ts for the layout.
use std::cell::{RefCell, RefMut};
use std::rc::Rc;

use napi::bindgen_prelude::{Buffer, BufferSlice, Float64Array, Uint32Array, Uint8Array};
use napi::{Env, Result};
use napi_derive::napi;
use perp_signal_core::columns::Columns;
use perp_signal_core::decimal::{write_fixed, write_fixed_signed, write_trimmed};
use perp_signal_core::ingest;
use perp_signal_core::symbol_index::SymbolIndex;
use perp_signal_core::wire::{self, frame, v1, v2, AssetSpec, TradeRef};
use perp_signal_core::{trade_json, CodecError};

use crate::error;
use crate::ingest_session::{Arrays, Session};

#[napi(object)]
pub struct AssetSpecJs {
    pub symbol: String,
    pub ref_price: String,
    pub ref_qty: String,
    pub price_scale: Option<u32>,
    pub qty_scale: Option<u32>,
}

pub enum Enc {
    V1(v1::Encoder),
    V2(v2::Encoder),
}

#[napi]
pub struct NativeEncoder {
    /// Shared with the ingest session bound to it (ingest_session.rs); no JS runs while either
    /// borrows it, so a borrow never finds it taken.
    inner: Rc<RefCell<Enc>>,
    /// Asset symbols in wire order, to map a raw frame's `s` to its index.
    symbols: Rc<SymbolIndex>,
}

/// JS numbers that must be integers (times, ids): refuse fractions, NaN and values past 2^53.
fn int(v: f64, what: &str) -> std::result::Result<i64, CodecError> {
    if v.is_finite() && v.fract() == 0.0 && v.abs() <= 9_007_199_254_740_992.0 {
        Ok(v as i64)
    } else {
        Err(CodecError::InvalidArg(format!(
            "{what} must be an integer below 2^53, got {v}"
        )))
    }
}

fn uint(v: f64, what: &str) -> std::result::Result<u64, CodecError> {
    match int(v, what)? {
        i if i >= 0 => Ok(i as u64),
        _ => Err(CodecError::InvalidArg(format!(
            "{what} must not be negative, got {v}"
        ))),
    }
}

fn scale(v: Option<u32>) -> Option<u8> {
    v.map(|s| s.min(255) as u8)
}

/// f64 slots per trade in a packed batch.
const SLOTS: usize = 7;

/// Reads the packed batch: `nums` = 7 f64 LE per trade (asset, time, tradeId, maker, and the
/// byte lengths of price, qty and type), `text` = those strings back to back in Latin-1.
struct Packed<'a> {
    nums: &'a [u8],
    text: &'a [u8],
    i: usize,
    pos: usize,
}

impl<'a> Packed<'a> {
    fn f(&self, k: usize) -> f64 {
        let at = (self.i * SLOTS + k) * 8;
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.nums[at..at + 8]);
        f64::from_le_bytes(b)
    }
    fn field(&mut self, len: f64) -> std::result::Result<&'a [u8], CodecError> {
        let len = uint(len, "packed field length")? as usize;
        let s = self
            .text
            .get(self.pos..self.pos.saturating_add(len))
            .ok_or_else(|| CodecError::InvalidArg("packed batch text ends early".into()))?;
        self.pos += len;
        Ok(s)
    }
}

impl<'a> Iterator for Packed<'a> {
    type Item = std::result::Result<TradeRef<'a>, CodecError>;
    fn next(&mut self) -> Option<Self::Item> {
        if (self.i + 1) * SLOTS * 8 > self.nums.len() {
            return None;
        }
        let r = (|| {
            let asset = uint(self.f(0), "asset")? as usize;
            let time = int(self.f(1), "tradeTime")?;
            let trade_id = uint(self.f(2), "tradeId")?;
            let maker = self.f(3) != 0.0;
            let price = self.field(self.f(4))?;
            let qty = self.field(self.f(5))?;
            let kind = self.field(self.f(6))?;
            Ok(TradeRef {
                asset,
                time,
                trade_id,
                price,
                qty,
                maker,
                kind,
            })
        })();
        self.i += 1;
        Some(r)
    }
}

fn encode_all(
    enc: &mut Enc,
    mut trades: Packed,
    out: &mut Vec<u8>,
) -> std::result::Result<(), (usize, CodecError)> {
    let mut i = 0;
    for t in trades.by_ref() {
        t.and_then(|t| enc.encode_framed(&t, out)).map_err(|e| (i, e))?;
        i += 1;
    }
    if trades.pos != trades.text.len() {
        return Err((
            i,
            CodecError::InvalidArg("packed batch has text left over".into()),
        ));
    }
    Ok(())
}

fn encode_single(
    enc: &mut Enc,
    mut trades: Packed,
    out: &mut Vec<u8>,
) -> std::result::Result<(), (usize, CodecError)> {
    let t = trades
        .next()
        .unwrap_or_else(|| Err(CodecError::InvalidArg("no trade given".into())))
        .map_err(|e| (0, e))?;
    if trades.next().is_some() || trades.pos != trades.text.len() {
        return Err((0, CodecError::InvalidArg("expected exactly one trade".into())));
    }
    enc.encode(&t, out).map_err(|e| (0, e))
}

impl Enc {
    fn encode(&mut self, t: &TradeRef, out: &mut Vec<u8>) -> std::result::Result<(), CodecError> {
        match self {
            Enc::V1(e) => e.encode(t, out),
            Enc::V2(e) => e.encode(t, out),
        }
    }
    fn encode_framed(&mut self, t: &TradeRef, out: &mut Vec<u8>) -> std::result::Result<(), CodecError> {
        match self {
            Enc::V1(e) => e.encode_framed(t, out),
            Enc::V2(e) => e.encode_framed(t, out),
        }
    }
}

impl ingest::FrameEncoder for Enc {
    fn encode_framed(&mut self, t: &TradeRef, out: &mut Vec<u8>) -> std::result::Result<(), CodecError> {
        Enc::encode_framed(self, t, out)
    }
}

impl Enc {
    fn snapshot_copy(&self) -> Enc {
        match self {
            Enc::V1(e) => Enc::V1(e.clone()),
            Enc::V2(e) => Enc::V2(e.clone()),
        }
    }
}

impl NativeEncoder {
    fn enc(&self, env: &Env) -> Result<RefMut<'_, Enc>> {
        self.inner
            .try_borrow_mut()
            .map_err(|_| error::invalid_arg(env, "the encoder is in use"))
    }
}

#[napi]
impl NativeEncoder {
    #[napi(constructor)]
    pub fn new(env: Env, wire: String, assets: Vec<AssetSpecJs>, ref_time: f64) -> Result<Self> {
        let specs: Vec<AssetSpec> = assets
            .into_iter()
            .map(|a| AssetSpec {
                symbol: a.symbol,
                ref_price: a.ref_price,
                ref_qty: a.ref_qty,
                price_scale: scale(a.price_scale),
                qty_scale: scale(a.qty_scale),
            })
            .collect();
        let r = int(ref_time, "refTime").and_then(|t| match wire.as_str() {
            "v1" => v1::Encoder::new(&specs, t).map(Enc::V1),
            "v2" => v2::Encoder::new(&specs, t).map(Enc::V2),
            w => Err(CodecError::InvalidArg(format!(
                "wire must be 'v1' or 'v2', got {w:?}"
            ))),
        });
        let symbols = Rc::new(SymbolIndex::new(
            &specs.iter().map(|a| a.symbol.as_bytes()).collect::<Vec<_>>(),
        ));
        r.map(|inner| NativeEncoder {
            inner: Rc::new(RefCell::new(inner)),
            symbols,
        })
        .map_err(|e| error::codec(&env, e))
    }

    /// Encodes a packed batch into length-prefixed frames (`framed`), or one packed trade into
    /// its bare payload. All or nothing: on error the encoder is as before the call and the error
    /// names the trade's index. The result is copied into a V8-owned buffer: for the sizes of a
    /// batch that is cheaper than an external buffer with a finalizer.
    #[napi]
    pub fn encode_packed<'env>(
        &mut self,
        env: &'env Env,
        nums: &[u8],
        text: &[u8],
        framed: bool,
    ) -> Result<BufferSlice<'env>> {
        let n = nums.len() / (SLOTS * 8);
        let mut out = Vec::with_capacity(n * 16);
        let mut inner = self.enc(env)?;
        // A single trade's encode is atomic in the core already; a batch restores this copy.
        let saved = framed.then(|| inner.snapshot_copy());
        let trades = Packed {
            nums,
            text,
            i: 0,
            pos: 0,
        };
        let r = if framed {
            encode_all(&mut inner, trades, &mut out)
        } else {
            encode_single(&mut inner, trades, &mut out)
        };
        match r {
            Ok(()) => BufferSlice::copy_from(env, out),
            Err((i, e)) => {
                if let Some(saved) = saved {
                    *inner = saved;
                }
                Err(error::throw(
                    env,
                    e.code(),
                    &format!("trade #{i} of the batch: {e} (nothing of the batch was encoded)"),
                ))
            }
        }
    }

    /// Parses and encodes a batch of raw trade frames (JSON text, newline-separated) in one call:
    /// the Rust-parse alternative to `encodePacked` (see docs/performance.md, "End to end").
    /// `meta` receives the count, then (asset, tradeId, tradeTime) per trade, for the caller's gap
    /// and duplicate checks. All or nothing, like `encodePacked`; the error names the frame.
    #[napi]
    pub fn encode_json<'env>(
        &mut self,
        env: &'env Env,
        lines: &[u8],
        meta: OutNums,
    ) -> Result<BufferSlice<'env>> {
        let mut inner = self.enc(env)?;
        let saved = inner.snapshot_copy();
        let mut out = Vec::with_capacity(lines.len() / 16);
        let mut n = 0usize;
        let r: std::result::Result<(), CodecError> = trade_json::lines(lines).try_for_each(|f| {
            let t = trade_json::parse_trade(f)?;
            let asset = self
                .symbols
                .find(t.symbol)
                .ok_or_else(|| CodecError::UnknownSymbol(String::from_utf8_lossy(t.symbol).into()))?;
            let slot = meta
                .get_mut(1 + 3 * n..4 + 3 * n)
                .ok_or_else(|| CodecError::InvalidArg("meta array is too short for the batch".into()))?;
            slot.copy_from_slice(&[asset as f64, t.trade_id as f64, t.trade_time as f64]);
            inner.encode_framed(&t.to_ref(asset), &mut out)?;
            n += 1;
            Ok(())
        });
        match r {
            Ok(()) => {
                if let Some(c) = meta.first_mut() {
                    *c = n as f64;
                }
                BufferSlice::copy_from(env, out)
            }
            Err(e) => {
                *inner = saved;
                Err(error::throw(
                    env,
                    e.code(),
                    &format!("frame #{n} of the batch: {e} (nothing of the batch was encoded)"),
                ))
            }
        }
    }

    /// Makes this encoder and these arrays the session `ingestBound()` runs (the forwarder's
    /// fast path, core `ingest::run_within`; see ingest_session.rs): raw frames in `pool`
    /// (frame i ends at `ends[i]`), checked against `last_ids` (advanced in place) and `blocked`,
    /// encoded into `out`; `io` carries each call's request and results. Kept until another bind.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn bind_ingest(
        &self,
        env: Env,
        pool: Uint8Array,
        ends: Uint32Array,
        last_ids: Float64Array,
        blocked: Uint8Array,
        io: Float64Array,
        out: Uint8Array,
    ) -> Result<()> {
        let arrays = Arrays {
            pool,
            ends,
            last_ids,
            blocked,
            io,
            out,
        };
        Session::bind(Rc::clone(&self.inner), Rc::clone(&self.symbols), arrays)
            .map_err(|e| error::invalid_arg(&env, &e.reason))
    }

    #[napi]
    pub fn header(&self, env: Env) -> Result<Buffer> {
        Ok(match &*self.enc(&env)? {
            Enc::V1(e) => e.header().into(),
            Enc::V2(e) => e.header().into(),
        })
    }

    #[napi]
    pub fn snapshot(&mut self, env: Env) -> Result<Buffer> {
        match &mut *self.enc(&env)? {
            Enc::V1(_) => Err(error::throw(
                &env,
                "E_NOT_IN_V1",
                "wire v1 has no snapshot frame; a v1 consumer starts from header() (see join())",
            )),
            Enc::V2(e) => Ok(e.snapshot().into()),
        }
    }

    #[napi]
    pub fn heartbeat(&mut self, env: Env, now_ms: f64) -> Result<Option<Buffer>> {
        match &mut *self.enc(&env)? {
            Enc::V1(_) => Ok(None),
            Enc::V2(e) => {
                let now = uint(now_ms, "nowMs").map_err(|e| error::codec(&env, e))?;
                Ok(Some(e.heartbeat(now).into()))
            }
        }
    }

    #[napi]
    pub fn gap(
        &mut self,
        env: Env,
        asset: u32,
        last_id: f64,
        next_id: f64,
        reason: u32,
    ) -> Result<Option<Buffer>> {
        match &mut *self.enc(&env)? {
            Enc::V1(_) => Ok(None),
            Enc::V2(e) => uint(last_id, "lastId")
                .and_then(|l| Ok((l, uint(next_id, "nextId")?)))
                .and_then(|(l, n)| e.gap(asset as usize, l, n, reason.min(255) as u8))
                .map(|b| Some(b.into()))
                .map_err(|e| error::codec(&env, e)),
        }
    }

    /// v1 only: each asset's last trade time (ms), what a decoder needs besides header().
    #[napi]
    pub fn state_v1(&self, env: Env) -> Result<Option<Vec<f64>>> {
        Ok(match &*self.enc(&env)? {
            Enc::V1(e) => Some(e.state().iter().map(|s| s.time as f64).collect()),
            Enc::V2(_) => None,
        })
    }

    #[napi]
    pub fn join(&self, env: Env) -> Result<NativeJoiner> {
        Ok(match &*self.enc(&env)? {
            Enc::V1(e) => {
                let (header, j) = e.join();
                NativeJoiner {
                    header,
                    inner: Some(j),
                }
            }
            Enc::V2(e) => NativeJoiner {
                header: e.header(),
                inner: None,
            },
        })
    }
}

#[napi]
pub struct NativeJoiner {
    header: Vec<u8>,
    inner: Option<v1::Join>,
}

#[napi]
impl NativeJoiner {
    #[napi]
    pub fn header(&self) -> Buffer {
        self.header.clone().into()
    }

    #[napi]
    pub fn caught_up(&self) -> bool {
        self.inner.as_ref().is_none_or(|j| j.caught_up())
    }

    /// The rewritten batch, or null when the caller's bytes are valid as they are.
    #[napi]
    pub fn adapt(&mut self, env: Env, frames: &[u8]) -> Result<Option<Buffer>> {
        match &mut self.inner {
            None => Ok(None),
            Some(j) => j
                .adapt(frames)
                .map(|o| o.map(Buffer::from))
                .map_err(|e| error::codec(&env, e)),
        }
    }
}

enum Dec {
    V1(v1::Decoder),
    V2 { d: v2::Decoder, check_stream: bool },
}

#[napi]
pub struct NativeDecoder {
    inner: Dec,
    /// Output of `decodeColumns`, reused; it also keeps the trade-type codes across batches.
    columns: Columns,
}

/// A JS Float64Array written in place. Spelled as an alias so the napi macro takes the typed
/// array conversion (`FromNapiValue for &mut [f64]`) rather than a class reference.
type OutNums<'a> = &'a mut [f64];

const K_TRADE: f64 = 0.0;
const K_HEARTBEAT: f64 = 1.0;
const K_GAP: f64 = 2.0;
const K_SNAPSHOT: f64 = 3.0;
const K_LOST: f64 = 4.0;

struct Out {
    nums: Vec<f64>,
    text: Vec<u8>,
}

impl Out {
    fn rec(&mut self, r: [f64; 8]) {
        self.nums.extend_from_slice(&r);
    }
}

fn snapshot_json(s: &v2::State, out: &mut Vec<u8>) {
    // Symbols and types are limited to [A-Za-z0-9_.-], so no escaping is needed.
    out.extend_from_slice(b"[");
    for (i, a) in s.assets.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(
            format!("{{\"symbol\":\"{}\",\"time\":{},\"price\":\"", a.symbol, a.time).as_bytes(),
        );
        write_fixed_signed(out, a.price, a.price_scale);
        out.extend_from_slice(
            format!(
                "\",\"tradeId\":{},\"assetSeq\":{},\"priceScale\":{},\"qtyScale\":{},\"type\":\"{}\"}}",
                a.trade_id,
                a.seq,
                a.price_scale,
                a.qty_scale,
                String::from_utf8_lossy(&a.kind)
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"]\n");
}

/// The two shapes a decoded payload is written in: records for objects (`Out`) and columns
/// (`Columns`). `Dec::decode_to` walks each frame once and feeds one of them.
trait Sink {
    fn v1_trade(&mut self, t: &v1::Trade);
    /// `more`: something else of the same frame follows (objects mark it).
    fn lost(&mut self, l: v2::Loss, more: bool);
    fn trade(&mut self, t: &v2::Trade);
    fn heartbeat(&mut self, seq: u64, time: u64);
    fn gap(&mut self, asset: usize, last_id: u64, next_id: u64, seq: u64, reason: u8);
    /// A snapshot replaced the decoder's state; `state` is the new one.
    fn snapshot(&mut self, seq: u64, state: &v2::State);
}

impl Sink for Out {
    fn v1_trade(&mut self, t: &v1::Trade) {
        self.rec([
            K_TRADE,
            t.asset as f64,
            t.time as f64,
            -1.0,
            -1.0,
            -1.0,
            f64::from(u8::from(t.maker)),
            0.0,
        ]);
        write_trimmed(&mut self.text, t.price, v1::SCALE);
        self.text.push(b'\n');
        write_trimmed(&mut self.text, t.qty as i64, v1::SCALE);
        self.text.push(b'\n');
    }

    fn lost(&mut self, l: v2::Loss, more: bool) {
        let (asset, scope) = match l.asset {
            None => (-1.0, 0.0),
            Some(a) => (a as f64, 1.0),
        };
        self.rec([
            K_LOST,
            asset,
            l.missing as f64,
            scope,
            -1.0,
            -1.0,
            f64::from(u8::from(more)),
            0.0,
        ]);
    }

    fn trade(&mut self, t: &v2::Trade) {
        self.rec([
            K_TRADE,
            t.asset as f64,
            t.time as f64,
            t.trade_id as f64,
            t.seq as f64,
            t.asset_seq as f64,
            f64::from(u8::from(t.maker)),
            0.0,
        ]);
        write_fixed_signed(&mut self.text, t.price, t.price_scale);
        self.text.push(b'\n');
        write_fixed(&mut self.text, t.qty, t.qty_scale);
        self.text.push(b'\n');
        self.text.extend_from_slice(t.kind);
        self.text.push(b'\n');
    }

    fn heartbeat(&mut self, seq: u64, time: u64) {
        self.rec([K_HEARTBEAT, -1.0, time as f64, -1.0, seq as f64, -1.0, 0.0, 0.0]);
    }

    fn gap(&mut self, asset: usize, last_id: u64, next_id: u64, seq: u64, reason: u8) {
        self.rec([
            K_GAP,
            asset as f64,
            last_id as f64,
            next_id as f64,
            seq as f64,
            f64::from(reason),
            0.0,
            0.0,
        ]);
    }

    fn snapshot(&mut self, seq: u64, state: &v2::State) {
        self.rec([K_SNAPSHOT, -1.0, 0.0, 0.0, seq as f64, -1.0, 0.0, 0.0]);
        snapshot_json(state, &mut self.text);
    }
}

impl Sink for Columns {
    fn v1_trade(&mut self, t: &v1::Trade) {
        self.push_v1(t);
    }

    fn lost(&mut self, l: v2::Loss, _more: bool) {
        self.push_lost(&l);
    }

    fn trade(&mut self, t: &v2::Trade) {
        self.push_v2_trade(t);
    }

    fn heartbeat(&mut self, seq: u64, time: u64) {
        self.push_heartbeat(seq, time);
    }

    fn gap(&mut self, asset: usize, last_id: u64, next_id: u64, seq: u64, reason: u8) {
        self.push_gap(asset, last_id, next_id, seq, reason);
    }

    fn snapshot(&mut self, seq: u64, state: &v2::State) {
        self.push_snapshot(seq);
        snapshot_json(state, &mut self.text);
    }
}

impl Dec {
    /// Decodes one payload into `out`: in v2 the frame's losses first (stream, then asset), then
    /// its message.
    fn decode_to(&mut self, p: &[u8], out: &mut impl Sink) -> std::result::Result<(), CodecError> {
        match self {
            Dec::V1(d) => out.v1_trade(&d.decode(p)?),
            Dec::V2 { d, check_stream } => {
                let r = d.decode(p)?;
                if let Some(l) = r.stream_loss.filter(|_| *check_stream) {
                    out.lost(l, r.asset_loss.is_some() || r.message.is_some());
                }
                if let Some(l) = r.asset_loss {
                    out.lost(l, r.message.is_some());
                }
                match r.message {
                    None => {}
                    Some(v2::Message::Trade(t)) => out.trade(&t),
                    Some(v2::Message::Heartbeat { seq, time }) => out.heartbeat(seq, time),
                    Some(v2::Message::Gap {
                        seq,
                        asset,
                        last_id,
                        next_id,
                        reason,
                        ..
                    }) => out.gap(asset, last_id, next_id, seq, reason),
                    Some(v2::Message::Snapshot { seq }) => out.snapshot(seq, d.state()),
                }
            }
        }
        Ok(())
    }
}

#[napi]
impl NativeDecoder {
    #[napi(constructor)]
    pub fn new(
        env: Env,
        header: &[u8],
        last_times: Option<Vec<f64>>,
        check_stream: Option<bool>,
    ) -> Result<Self> {
        let r = (|| {
            Ok(match wire::detect(header)? {
                wire::Wire::V1 => {
                    let times = last_times
                        .map(|t| {
                            t.iter()
                                .map(|&v| int(v, "lastTimes[]"))
                                .collect::<std::result::Result<Vec<_>, _>>()
                        })
                        .transpose()?;
                    Dec::V1(v1::Decoder::from_header(header, times.as_deref())?)
                }
                wire::Wire::V2 => Dec::V2 {
                    d: v2::Decoder::from_header(header)?,
                    check_stream: check_stream.unwrap_or(true),
                },
            })
        })();
        r.map(|inner| NativeDecoder {
            inner,
            columns: Columns::new(),
        })
        .map_err(|e| error::codec(&env, e))
    }

    #[napi(getter)]
    pub fn wire(&self) -> String {
        match self.inner {
            Dec::V1(_) => "v1".into(),
            Dec::V2 { .. } => "v2".into(),
        }
    }

    #[napi(getter)]
    pub fn symbols(&self) -> Vec<String> {
        match &self.inner {
            Dec::V1(d) => d.symbols().to_vec(),
            Dec::V2 { d, .. } => d.state().assets.iter().map(|a| a.symbol.clone()).collect(),
        }
    }

    /// Decodes one payload (`framed` false) or a u32-LE framed batch. Records go into `nums`
    /// (a Float64Array the caller reuses): `nums[0]` = record count, then 8 f64 per record; the
    /// records' text fields are returned, each ended by '\n'.
    #[napi]
    pub fn decode_packed(&mut self, env: Env, data: &[u8], framed: bool, nums: OutNums) -> Result<String> {
        let mut o = Out {
            nums: Vec::with_capacity(if framed { data.len() } else { 24 }),
            text: Vec::with_capacity(if framed { data.len() * 3 } else { 32 }),
        };
        let r = if framed {
            frame::Frames::new(data).enumerate().try_for_each(|(i, p)| {
                p.and_then(|p| self.inner.decode_to(p, &mut o))
                    .map_err(|e| (i, e))
            })
        } else {
            self.inner.decode_to(data, &mut o).map_err(|e| (0, e))
        };
        match r {
            Ok(()) if o.nums.len() < nums.len() => {
                nums[0] = (o.nums.len() / 8) as f64;
                nums[1..=o.nums.len()].copy_from_slice(&o.nums);
                // Only ASCII digits, '.', '-', symbols and types were written.
                Ok(String::from_utf8(o.text)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
            }
            Ok(()) => Err(error::invalid_arg(
                &env,
                "decode output array too small (internal: size it from the input length)",
            )),
            Err((i, e)) if framed => Err(error::throw(
                &env,
                e.code(),
                &format!("frame #{i} of the batch: {e}"),
            )),
            Err((_, e)) => Err(error::codec(&env, e)),
        }
    }

    /// Decodes a u32-LE framed batch into columns: `cols` (a Float64Array the caller reuses,
    /// sized from the input length) receives the trade count, then each of the columns of
    /// perp_signal_core::columns::col for that many rows. Non-trade messages come back as
    /// `events` (8 f64 each, see `columns::Event`) with their text, or null when there were none.
    /// On a malformed frame it throws naming it; the frames before it were applied to the state.
    #[napi]
    pub fn decode_columns(&mut self, env: Env, data: &[u8], cols: OutNums) -> Result<Option<ColumnEvents>> {
        let c = &mut self.columns;
        c.clear();
        c.reserve(data.len() / 8);
        let inner = &mut self.inner;
        let r = frame::Frames::new(data)
            .enumerate()
            .try_for_each(|(i, p)| p.and_then(|p| inner.decode_to(p, c)).map_err(|e| (i, e)));
        if let Err((i, e)) = r {
            return Err(error::throw(
                &env,
                e.code(),
                &format!("frame #{i} of the batch: {e}"),
            ));
        }
        if !c.write_to(cols) {
            return Err(error::invalid_arg(
                &env,
                "decodeColumns output array too small (internal: size it from the input length)",
            ));
        }
        if c.events().is_empty() {
            return Ok(None);
        }
        Ok(Some(ColumnEvents {
            nums: c.events().to_vec(),
            text: String::from_utf8_lossy(&c.text).into_owned(),
        }))
    }
}

/// Non-trade records of a `decodeColumns` batch (rare, so an object is fine here).
#[napi(object)]
pub struct ColumnEvents {
    /// 8 f64 per event: kind, row, fields (see perp_signal_core::columns::Event).
    pub nums: Vec<f64>,
    /// Text of snapshot, wide-value and type events, in order, each ended by '\n'.
    pub text: String,
}

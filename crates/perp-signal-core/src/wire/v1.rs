//! Wire v1, byte-compatible with the original service (../shared/spec/wire-v1.md): header of
//! symbols and f64 reference values, then 4-field trade messages of deltas in units of 1e-5.
//!
//! Unlike the original, state is kept in integer units of 1e-5 and values are scaled exactly, so
//! a decoder's running sum equals the true price at every message, and late joiners get a header
//! holding the current state.
use super::frame::{append, Short};
use super::{check_asset_list, AssetSpec, Reader, TradeRef};
use crate::decimal;
use crate::error::CodecError;
use crate::varint::{put_ivarint, put_uvarint, short_uvarint, zigzag, SHORT_LIMIT};

pub const VERSION: u8 = 0x01;
/// The 7 low bits of byte 0 hold the asset index.
pub const MAX_ASSETS: usize = 127;
/// Every v1 value is an integer number of 1e-5.
pub const SCALE: u8 = 5;
const UNIT: f64 = 100_000.0;

/// The decoder-visible state of one asset: what the next delta runs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetState {
    pub time: i64,
    /// Units of 1e-5.
    pub price: i64,
}

#[cold]
fn precision_error(symbol: &str, field: &str, value: &[u8], needed: u8) -> CodecError {
    CodecError::V1Precision(format!(
        "{symbol}: {field} {} needs {needed} decimals but wire v1 carries only {SCALE}; \
         it would be rounded, so it is refused: use wire v2 (lossless) for {symbol}",
        String::from_utf8_lossy(value)
    ))
}

#[inline]
fn units(symbol: &str, field: &str, value: &[u8]) -> Result<u64, CodecError> {
    // The exchange writes at most 5 decimals for every v1-eligible symbol: one multiply, and the
    // decimals-needed check only for the values that have more written.
    let (digits, written) = decimal::parse_written(value)?;
    if written <= SCALE {
        if let Some(v) = digits
            .checked_mul(decimal::pow10(SCALE - written))
            .filter(|&v| v <= i64::MAX as u64)
        {
            return Ok(v);
        }
    }
    units_slow(symbol, field, value)
}

#[cold]
fn units_slow(symbol: &str, field: &str, value: &[u8]) -> Result<u64, CodecError> {
    let p = decimal::parse(value)?;
    match p.at_scale(SCALE) {
        Some(v) if v <= i64::MAX as u64 => Ok(v),
        _ if p.needed > SCALE => Err(precision_error(symbol, field, value, p.needed)),
        _ => Err(too_large(symbol, field, value)),
    }
}

/// The header's one timestamp is a u64 and a late joiner's offsets are differences of asset
/// times, so every time the encoder keeps is ms since the epoch: 0..=i64::MAX.
#[cold]
fn before_epoch(symbol: &str, time: i64) -> CodecError {
    CodecError::InvalidArg(format!(
        "{symbol}: trade time {time} is before the Unix epoch; wire v1 carries ms since the epoch (>= 0)"
    ))
}

#[cold]
fn too_large(symbol: &str, field: &str, value: &[u8]) -> CodecError {
    CodecError::Overflow(format!(
        "{symbol}: {field} {} is too large for wire v1",
        String::from_utf8_lossy(value)
    ))
}

#[derive(Debug, Clone)]
pub struct Encoder {
    symbols: Vec<String>,
    ref_qty: Vec<u64>,
    state: Vec<AssetState>,
}

impl Encoder {
    /// Reference prices are rounded to 1e-5 (they are means, not trades); the header then carries
    /// exactly that value, so encoder and decoder start equal.
    pub fn new(assets: &[AssetSpec], ref_time: i64) -> Result<Self, CodecError> {
        check_asset_list(assets, MAX_ASSETS)?;
        if ref_time < 0 {
            return Err(CodecError::InvalidArg(format!(
                "refTime {ref_time} must be ms since the Unix epoch (>= 0)"
            )));
        }
        let mut state = Vec::with_capacity(assets.len());
        let mut ref_qty = Vec::with_capacity(assets.len());
        for a in assets {
            for (field, s) in [("priceScale", a.price_scale), ("qtyScale", a.qty_scale)] {
                if let Some(s) = s.filter(|&s| s > SCALE) {
                    return Err(CodecError::V1Precision(format!(
                        "{sym}: {field} {s} needs more than the {SCALE} decimals wire v1 carries; \
                         use wire v2 (lossless) for {sym}",
                        sym = a.symbol
                    )));
                }
            }
            let price = round_ref(&a.symbol, "refPrice", &a.ref_price)?;
            let qty = round_ref(&a.symbol, "refQty", &a.ref_qty)?;
            state.push(AssetState {
                time: ref_time,
                price: price as i64,
            });
            ref_qty.push(qty);
        }
        Ok(Encoder {
            symbols: assets.iter().map(|a| a.symbol.clone()).collect(),
            ref_qty,
            state,
        })
    }

    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    pub fn state(&self) -> &[AssetState] {
        &self.state
    }

    /// Appends one trade message. On error nothing is written and the state is unchanged.
    #[inline]
    pub fn encode(&mut self, t: &TradeRef, out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.encode_to(t, out, false)
    }

    /// Appends one length-prefixed trade message.
    #[inline]
    pub fn encode_framed(&mut self, t: &TradeRef, out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.encode_to(t, out, true)
    }

    #[inline(always)]
    fn encode_to(&mut self, t: &TradeRef, out: &mut Vec<u8>, framed: bool) -> Result<(), CodecError> {
        let Some(st) = self.state.get(t.asset) else {
            return Err(CodecError::UnknownAsset {
                index: t.asset as u64,
                count: self.state.len(),
            });
        };
        let sym = &self.symbols[t.asset];
        let price = units(sym, "price", t.price)? as i64;
        let qty = units(sym, "quantity", t.qty)?;
        if t.time < 0 {
            return Err(before_epoch(sym, t.time));
        }
        let dt = t.time - st.time; // both in 0..=i64::MAX: cannot overflow
        let dp = price - st.price; // both in 0..=i64::MAX: cannot overflow
        let tag = (t.asset as u8) | if t.maker { 0x80 } else { 0 };
        let (zt, zp) = (zigzag(dt), zigzag(dp));
        if zt | zp | qty < SHORT_LIMIT {
            // 1 + 3 x 4 bytes at most: fits one register-built message.
            Short::new(u32::from(tag), 1)
                .push(short_uvarint(zt as u32))
                .push(short_uvarint(zp as u32))
                .push(short_uvarint(qty as u32))
                .write(out, framed);
        } else {
            append(out, framed, |out| {
                out.push(tag);
                put_uvarint(out, zt);
                put_uvarint(out, zp);
                put_uvarint(out, qty);
            });
        }
        self.state[t.asset] = AssetState { time: t.time, price };
        Ok(())
    }

    /// The reference timestamp a header built now carries: the latest trade time of any asset.
    fn header_time(&self) -> i64 {
        self.state.iter().map(|s| s.time).max().unwrap_or(0)
    }

    /// A header whose reference prices are the current state. Its one timestamp is the latest
    /// asset time; a consumer starting from it needs [`Join`] (or per-asset times, see
    /// [`Decoder::from_header`]) for the first message of each other asset.
    pub fn header(&self) -> Vec<u8> {
        write_header(
            &self.symbols,
            self.header_time(),
            self.state.iter().map(|s| s.price),
            self.ref_qty.iter().copied(),
        )
    }

    /// A late joiner starting now: the header it gets and the adapter for its later batches.
    pub fn join(&self) -> (Vec<u8>, Join) {
        let t = self.header_time();
        (self.header(), Join::new(self.state.iter().map(|s| s.time - t)))
    }
}

fn round_ref(symbol: &str, field: &str, s: &str) -> Result<u64, CodecError> {
    decimal::parse(s.as_bytes())?
        .rounded(SCALE)
        .filter(|&v| v < (1u64 << 53))
        .ok_or_else(|| CodecError::Overflow(format!("{symbol}: {field} {s} is too large")))
}

fn write_header(
    symbols: &[String],
    time: i64,
    prices: impl Iterator<Item = i64>,
    qtys: impl Iterator<Item = u64>,
) -> Vec<u8> {
    let mut h = Vec::with_capacity(2 + symbols.len() * 24 + 8);
    h.push(VERSION);
    h.push(symbols.len() as u8);
    for s in symbols {
        h.push(s.len() as u8);
        h.extend_from_slice(s.as_bytes());
    }
    h.extend_from_slice(&(time as u64).to_le_bytes());
    // units / 1e5 is one correctly rounded division: the nearest f64 to the decimal value.
    for p in prices {
        h.extend_from_slice(&(p as f64 / UNIT).to_le_bytes());
    }
    for q in qtys {
        h.extend_from_slice(&(q as f64 / UNIT).to_le_bytes());
    }
    h
}

/// Rewrites, for one late joiner, the time delta of the first message of each asset after the
/// join (the header's single timestamp is not that asset's last time); from then on the
/// broadcast bytes are valid for it unchanged.
#[derive(Debug, Clone)]
pub struct Join {
    /// Per asset: its last trade time minus the header's timestamp.
    offsets: Vec<i64>,
    pending: Vec<bool>,
    left: usize,
}

impl Join {
    fn new(offsets: impl Iterator<Item = i64>) -> Self {
        let offsets: Vec<i64> = offsets.collect();
        let pending: Vec<bool> = offsets.iter().map(|&o| o != 0).collect();
        let left = pending.iter().filter(|&&p| p).count();
        Join {
            offsets,
            pending,
            left,
        }
    }

    /// True once no later message needs rewriting.
    pub fn caught_up(&self) -> bool {
        self.left == 0
    }

    /// Adapts a framed batch of trade messages. `None`: the batch is valid as it is (share it).
    pub fn adapt(&mut self, framed: &[u8]) -> Result<Option<Vec<u8>>, CodecError> {
        if self.left == 0 {
            return Ok(None);
        }
        // First pass: find and validate the frames to rewrite without touching any state.
        let mut fix: Vec<(usize, usize, i64)> = Vec::new(); // (frame start, payload len, new dt)
        let mut seen = self.pending.clone();
        let mut frames = super::frame::Frames::new(framed);
        loop {
            let start = frames.offset();
            let Some(p) = frames.next() else { break };
            let p = p?;
            let mut r = Reader::new(p);
            let asset = usize::from(r.u8()? & 0x7f);
            if asset >= self.offsets.len() {
                return Err(CodecError::UnknownAsset {
                    index: asset as u64,
                    count: self.offsets.len(),
                });
            }
            if seen[asset] {
                seen[asset] = false;
                let dt = r.ivarint()?;
                let dt = dt
                    .checked_add(self.offsets[asset])
                    .ok_or_else(|| CodecError::Overflow("time delta overflows on late join".into()))?;
                fix.push((start, p.len(), dt));
            }
        }
        if fix.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(framed.len() + fix.len() * 10);
        let mut copied = 0;
        for &(start, len, dt) in &fix {
            out.extend_from_slice(&framed[copied..start]);
            let payload = &framed[start + 4..start + 4 + len];
            let mut r = Reader::new(payload);
            let tag = r.u8()?;
            r.ivarint()?;
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            out.push(tag);
            put_ivarint(&mut out, dt);
            out.extend_from_slice(&payload[r.pos..]);
            let n = (out.len() - at - 4) as u32;
            out[at..at + 4].copy_from_slice(&n.to_le_bytes());
            copied = start + 4 + len;
            let asset = usize::from(tag & 0x7f);
            self.pending[asset] = false;
            self.left -= 1;
        }
        out.extend_from_slice(&framed[copied..]);
        Ok(Some(out))
    }
}

/// One decoded v1 trade; price and quantity in units of 1e-5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade {
    pub asset: usize,
    pub maker: bool,
    pub time: i64,
    pub price: i64,
    pub qty: u64,
}

#[derive(Debug, Clone)]
pub struct Decoder {
    symbols: Vec<String>,
    ref_qty: Vec<u64>,
    state: Vec<AssetState>,
}

impl Decoder {
    /// Starts from a v1 header. `last_times`, one per asset, replaces the header's single
    /// timestamp as each asset's previous time: that is how a consumer resumes mid-stream (e.g.
    /// from the shm ring) from `Encoder::header()` plus `Encoder::state()` times.
    pub fn from_header(h: &[u8], last_times: Option<&[i64]>) -> Result<Self, CodecError> {
        let mut r = Reader::new(h);
        let v = r.u8()?;
        if v != VERSION {
            return Err(super::detect(h).err().unwrap_or_else(|| {
                CodecError::WrongVersion("this is a wire v2 header; decode it with a v2 decoder".into())
            }));
        }
        let n = usize::from(r.u8()?);
        if n == 0 || n > MAX_ASSETS {
            return Err(CodecError::BadHeader(format!(
                "asset count {n} is outside 1..{MAX_ASSETS}"
            )));
        }
        // Each asset takes at least 1 + 1 + 16 bytes: refuse before allocating for a lie.
        if r.remaining() < n * 18 + 8 {
            return Err(CodecError::Truncated { offset: h.len() });
        }
        let mut symbols = Vec::with_capacity(n);
        for _ in 0..n {
            let len = usize::from(r.u8()?);
            let s = r.bytes(len)?;
            super::check_symbol(s).map_err(|e| CodecError::BadHeader(e.to_string()))?;
            symbols.push(String::from_utf8_lossy(s).into_owned());
        }
        let time = r.u64_le()?;
        let time = i64::try_from(time)
            .map_err(|_| CodecError::BadHeader(format!("reference timestamp {time} is absurd")))?;
        let mut prices = Vec::with_capacity(n);
        for s in &symbols {
            prices.push(ref_units(f64::from_bits(r.u64_le()?), s, "price")?);
        }
        let mut ref_qty = Vec::with_capacity(n);
        for s in &symbols {
            let q = ref_units(f64::from_bits(r.u64_le()?), s, "quantity")?;
            ref_qty.push(
                u64::try_from(q)
                    .map_err(|_| CodecError::BadHeader(format!("{s}: reference quantity is negative")))?,
            );
        }
        r.end()?;
        let times: Vec<i64> = match last_times {
            None => vec![time; n],
            Some(t) if t.len() == n => t.to_vec(),
            Some(t) => {
                return Err(CodecError::InvalidArg(format!(
                    "lastTimes has {} entries but the header lists {n} assets",
                    t.len()
                )))
            }
        };
        let state = times
            .into_iter()
            .zip(prices)
            .map(|(time, price)| AssetState { time, price })
            .collect();
        Ok(Decoder {
            symbols,
            ref_qty,
            state,
        })
    }

    pub fn symbols(&self) -> &[String] {
        &self.symbols
    }

    pub fn state(&self) -> &[AssetState] {
        &self.state
    }

    /// Reference quantities of the header, units of 1e-5.
    pub fn ref_qty(&self) -> &[u64] {
        &self.ref_qty
    }

    /// Decodes one trade message; on error the state is unchanged.
    #[inline]
    pub fn decode(&mut self, payload: &[u8]) -> Result<Trade, CodecError> {
        let mut r = Reader::new(payload);
        let tag = r.u8()?;
        let asset = usize::from(tag & 0x7f);
        let Some(st) = self.state.get(asset) else {
            return Err(CodecError::UnknownAsset {
                index: asset as u64,
                count: self.state.len(),
            });
        };
        let dt = r.ivarint()?;
        let dp = r.ivarint()?;
        let qty = r.uvarint()?;
        r.end()?;
        // The encoder writes at most i64::MAX units; more is corruption, and would wrap to a
        // negative quantity wherever it is handled as signed (formatting, columns).
        if qty > i64::MAX as u64 {
            return Err(CodecError::Overflow(format!(
                "quantity of {qty} units of 1e-5 is past what wire v1 carries"
            )));
        }
        let time = st
            .time
            .checked_add(dt)
            .ok_or_else(|| CodecError::Overflow("time delta overflows i64".into()))?;
        let price = st
            .price
            .checked_add(dp)
            .ok_or_else(|| CodecError::Overflow("price delta overflows i64".into()))?;
        self.state[asset] = AssetState { time, price };
        Ok(Trade {
            asset,
            maker: tag & 0x80 != 0,
            time,
            price,
            qty,
        })
    }
}

fn ref_units(f: f64, symbol: &str, what: &str) -> Result<i64, CodecError> {
    let u = (f * UNIT).round();
    if !u.is_finite() || u.abs() >= 9.0e15 {
        return Err(CodecError::BadHeader(format!(
            "{symbol}: reference {what} {f} is not a finite value a 1e-5 unit count can hold"
        )));
    }
    Ok(u as i64)
}

#[cfg(test)]
mod tests;

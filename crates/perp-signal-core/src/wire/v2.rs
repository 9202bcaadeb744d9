//! Wire v2, the project's own format: lossless (integers at per-asset decimal scales), frames
//! tagged by kind, stream and per-asset sequence numbers, snapshots for (re)starting a consumer.
//! docs/wire-format.md is the byte-level spec; this module is its one implementation.
use super::frame::{append, Short};
use super::{check_asset_list, AssetSpec, Reader, TradeRef};
use crate::decimal::{self, pow10, MAX_SCALE};
use crate::error::CodecError;
use crate::varint::{put_ivarint, put_uvarint, short_uvarint, zigzag, SHORT_LIMIT};

/// First bytes of a v2 header: `PSW` then the version.
pub const MAGIC: [u8; 4] = *b"PSW\x02";
pub const HEARTBEAT: u8 = 0x01;
pub const GAP: u8 = 0x02;
pub const SNAPSHOT: u8 = 0x03;
/// Trade tag bits: 1mxa aaaa (m = maker, x = extras byte follows, a = asset index or 31).
pub const TRADE: u8 = 0x80;
pub const MAKER: u8 = 0x40;
pub const EXTRAS: u8 = 0x20;
pub const ASSET_ESCAPE: u8 = 0x1f;
/// Extras flags: what differs from "next trade id, same type, same scales".
pub const X_SCALE: u8 = 0x01;
pub const X_ID: u8 = 0x02;
pub const X_TYPE: u8 = 0x04;
pub const MAX_ASSETS: usize = 1024;
/// Trade types (`X`) with a one-byte code; anything else travels as text after code 0xff.
pub const KNOWN_TYPES: [&[u8]; 5] = [b"MARKET", b"LIQUIDATION", b"INSURANCE_FUND", b"ADL", b"NA"];
pub const TYPE_LITERAL: u8 = 0xff;
/// Scale guessed from a reference value is capped: an over-large scale costs bytes on every trade,
/// a too-small one costs one scale change on the first trade that needs more.
const MAX_INFERRED_SCALE: u8 = 8;
/// Bytes of the smallest asset record of a header or snapshot.
const MIN_ASSET_RECORD: usize = 9;

/// What both sides know about one asset: the values the next deltas run from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub symbol: String,
    pub price_scale: u8,
    pub qty_scale: u8,
    pub time: i64,
    /// Units of 10^-price_scale.
    pub price: i64,
    pub trade_id: u64,
    /// Sequence number the asset's next trade or gap frame carries.
    pub seq: u64,
    /// `X` of the last trade.
    pub kind: Vec<u8>,
}

/// The whole codec state, identical in encoder and decoder after every frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Sequence number of the next frame of the stream.
    pub seq: u64,
    pub assets: Vec<Asset>,
}

impl State {
    fn write_assets(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.assets.len() as u64);
        for a in &self.assets {
            out.push(a.symbol.len() as u8);
            out.extend_from_slice(a.symbol.as_bytes());
            out.push(a.price_scale);
            out.push(a.qty_scale);
            put_ivarint(out, a.time);
            put_ivarint(out, a.price);
            put_uvarint(out, a.trade_id);
            put_uvarint(out, a.seq);
            put_kind(out, &a.kind);
        }
    }

    fn read_assets(r: &mut Reader, seq: u64) -> Result<State, CodecError> {
        let n = r.uvarint()?;
        if n == 0 || n > MAX_ASSETS as u64 {
            return Err(CodecError::BadHeader(format!(
                "asset count {n} is outside 1..{MAX_ASSETS}"
            )));
        }
        let n = n as usize;
        // The smallest asset record is 9 bytes (symbol length, a 1-byte symbol, two scales, four
        // 1-byte varints and a type code): refuse a lying count before allocating for it.
        if r.remaining() < n * MIN_ASSET_RECORD {
            return Err(CodecError::Truncated { offset: r.buf.len() });
        }
        let mut assets: Vec<Asset> = Vec::with_capacity(n);
        for _ in 0..n {
            let len = usize::from(r.u8()?);
            let sym = r.bytes(len)?;
            super::check_symbol(sym).map_err(|e| CodecError::BadHeader(e.to_string()))?;
            let a = Asset {
                symbol: String::from_utf8_lossy(sym).into_owned(),
                price_scale: r.u8()?,
                qty_scale: r.u8()?,
                time: r.ivarint()?,
                price: r.ivarint()?,
                trade_id: r.uvarint()?,
                seq: r.uvarint()?,
                kind: read_kind(r)?.to_vec(),
            };
            a.check(&assets)?;
            assets.push(a);
        }
        r.end()?;
        Ok(State { seq, assets })
    }

    /// What a header reader requires of a state: 1..MAX_ASSETS assets, each valid (see
    /// [`Asset::check`]).
    fn check(&self) -> Result<(), CodecError> {
        if self.assets.is_empty() || self.assets.len() > MAX_ASSETS {
            return Err(CodecError::BadHeader(format!(
                "asset count {} is outside 1..{MAX_ASSETS}",
                self.assets.len()
            )));
        }
        for (i, a) in self.assets.iter().enumerate() {
            a.check(&self.assets[..i])?;
        }
        Ok(())
    }

    /// Header payload: magic, then the state.
    pub fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(8 + self.assets.len() * 40);
        h.extend_from_slice(&MAGIC);
        put_uvarint(&mut h, self.seq);
        self.write_assets(&mut h);
        h
    }

    /// Reads a header or a snapshot frame.
    pub fn from_header(h: &[u8]) -> Result<State, CodecError> {
        match super::detect(h)? {
            super::Wire::V1 => Err(CodecError::WrongVersion(
                "this is a wire v1 header (first byte 0x01); decode it with a v1 decoder".into(),
            )),
            super::Wire::V2 => {
                let mut r = Reader::new(h);
                if h[0] == SNAPSHOT {
                    r.u8()?;
                    let seq = r.uvarint()?;
                    State::read_assets(&mut r, seq.wrapping_add(1))
                } else {
                    r.bytes(4)?;
                    let seq = r.uvarint()?;
                    State::read_assets(&mut r, seq)
                }
            }
        }
    }
}

impl Asset {
    /// A symbol and trade type the wire can carry, not among `earlier`'s symbols, and scales of
    /// at most MAX_SCALE (a larger one would make every power of ten taken from it wrong).
    fn check(&self, earlier: &[Asset]) -> Result<(), CodecError> {
        let bad = |e: CodecError| CodecError::BadHeader(e.to_string());
        super::check_symbol(self.symbol.as_bytes()).map_err(bad)?;
        if earlier.iter().any(|b| b.symbol == self.symbol) {
            return Err(CodecError::BadHeader(format!(
                "symbol {} listed twice",
                self.symbol
            )));
        }
        if self.price_scale > MAX_SCALE || self.qty_scale > MAX_SCALE {
            return Err(CodecError::BadHeader(format!(
                "{}: scale above {MAX_SCALE}",
                self.symbol
            )));
        }
        if !KNOWN_TYPES.contains(&self.kind.as_slice()) {
            check_kind(&self.kind).map_err(bad)?;
        }
        Ok(())
    }
}

fn put_kind(out: &mut Vec<u8>, kind: &[u8]) {
    match KNOWN_TYPES.iter().position(|k| *k == kind) {
        Some(i) => out.push(i as u8),
        None => {
            out.push(TYPE_LITERAL);
            out.push(kind.len() as u8);
            out.extend_from_slice(kind);
        }
    }
}

fn read_kind<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], CodecError> {
    let code = r.u8()?;
    if let Some(k) = KNOWN_TYPES.get(usize::from(code)) {
        return Ok(k);
    }
    if code != TYPE_LITERAL {
        return Err(CodecError::BadHeader(format!("unknown trade type code {code}")));
    }
    let len = usize::from(r.u8()?);
    let k = r.bytes(len)?;
    check_kind(k)?;
    Ok(k)
}

/// `digits` written with `written` decimals, in units of 10^-scale (scale >= written). The
/// exchange writes every value at the asset's scale, so the multiply (and its latency in the
/// chain to the delta) is skipped on a branch that is all but always taken.
#[inline(always)]
fn at_scale(digits: u64, written: u8, scale: u8) -> Option<u64> {
    if written == scale {
        Some(digits)
    } else {
        digits.checked_mul(pow10(scale - written))
    }
}

/// Slice equality without a libc `bcmp` call: trade types are a few bytes, and a call in the
/// middle of the encoder makes it spill its live registers on every trade.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (4..=8).contains(&n) {
        // Two overlapping 4-byte words cover it ("MARKET" is 6).
        let w = |s: &[u8], at: usize| s.get(at..at + 4).map(|x| [x[0], x[1], x[2], x[3]]);
        return w(a, 0) == w(b, 0) && w(a, n - 4) == w(b, n - 4);
    }
    a == b
}

fn check_kind(k: &[u8]) -> Result<(), CodecError> {
    super::check_symbol(k).map_err(|_| {
        CodecError::InvalidArg(format!(
            "trade type {:?} must be 1..32 characters of A-Z, 0-9, '_'",
            String::from_utf8_lossy(&k[..k.len().min(40)])
        ))
    })
}

fn infer_scale(explicit: Option<u8>, reference: &str) -> Result<u8, CodecError> {
    match explicit {
        Some(s) if s > MAX_SCALE => Err(CodecError::Scale(format!(
            "scale {s} is above the maximum {MAX_SCALE}"
        ))),
        Some(s) => Ok(s),
        None => Ok(decimal::parse(reference.as_bytes())?
            .needed
            .min(MAX_INFERRED_SCALE)),
    }
}

#[derive(Debug, Clone)]
pub struct Encoder {
    state: State,
}

impl Encoder {
    pub fn new(assets: &[AssetSpec], ref_time: i64) -> Result<Self, CodecError> {
        check_asset_list(assets, MAX_ASSETS)?;
        let mut out = Vec::with_capacity(assets.len());
        for a in assets {
            let price_scale = infer_scale(a.price_scale, &a.ref_price)?;
            let qty_scale = infer_scale(a.qty_scale, &a.ref_qty)?;
            decimal::parse(a.ref_qty.as_bytes())?;
            let price = decimal::parse(a.ref_price.as_bytes())?
                .rounded(price_scale)
                .and_then(|p| i64::try_from(p).ok())
                .ok_or_else(|| {
                    CodecError::Overflow(format!(
                        "{}: refPrice {} at scale {price_scale} overflows",
                        a.symbol, a.ref_price
                    ))
                })?;
            out.push(Asset {
                symbol: a.symbol.clone(),
                price_scale,
                qty_scale,
                time: ref_time,
                price,
                trade_id: 0,
                seq: 0,
                kind: KNOWN_TYPES[0].to_vec(),
            });
        }
        Ok(Encoder {
            state: State { seq: 0, assets: out },
        })
    }

    /// Resumes encoding from a state (e.g. one read back from a header); refused (`E_BAD_HEADER`)
    /// unless a header reader would take it.
    pub fn from_state(state: State) -> Result<Self, CodecError> {
        state.check()?;
        Ok(Encoder { state })
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn header(&self) -> Vec<u8> {
        self.state.header()
    }

    /// Appends one trade frame. On error nothing is written and the state is unchanged.
    #[inline]
    pub fn encode(&mut self, t: &TradeRef, out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.encode_to(t, out, false)
    }

    /// Appends one length-prefixed trade frame.
    #[inline]
    pub fn encode_framed(&mut self, t: &TradeRef, out: &mut Vec<u8>) -> Result<(), CodecError> {
        self.encode_to(t, out, true)
    }

    #[inline(always)]
    fn encode_to(&mut self, t: &TradeRef, out: &mut Vec<u8>, framed: bool) -> Result<(), CodecError> {
        // Parsed before anything else is loaded: with the asset state live across them, the
        // digit loops ran out of registers and kept their sum on the stack.
        let (p, p_written) = decimal::parse_written(t.price)?;
        let (q, q_written) = decimal::parse_written(t.qty)?;
        let count = self.state.assets.len();
        let Some(a) = self.state.assets.get_mut(t.asset) else {
            return Err(CodecError::UnknownAsset {
                index: t.asset as u64,
                count,
            });
        };
        // Grow to the decimals as written (not just the significant ones), so that the decoder
        // writes the exchange's own string back ("61800.30", not "61800.3"). The scale is never
        // below the decimals written, so scaling is one multiply and never drops a digit.
        let ps = a.price_scale.max(p_written);
        let qs = a.qty_scale.max(q_written);
        let overflow = |what: &str| CodecError::Overflow(format!("{}: {what} overflows 63 bits", a.symbol));
        let price = at_scale(p, p_written, ps)
            .and_then(|v| i64::try_from(v).ok())
            .ok_or_else(|| overflow("price"))?;
        let qty = at_scale(q, q_written, qs).ok_or_else(|| overflow("quantity"))?;
        let last = if ps > a.price_scale {
            a.price
                .checked_mul(pow10(ps - a.price_scale) as i64)
                .ok_or_else(|| overflow("previous price rescaled"))?
        } else {
            a.price
        };
        let dp = price.checked_sub(last).ok_or_else(|| overflow("price delta"))?;
        let dt = t.time.checked_sub(a.time).ok_or_else(|| overflow("time delta"))?;
        let scale_changed = ps != a.price_scale || qs != a.qty_scale;
        let id_plain = t.trade_id == a.trade_id.wrapping_add(1);
        let kind_plain = same_bytes(t.kind, &a.kind);
        if !kind_plain {
            check_kind(t.kind)?;
        }
        let mut tag = TRADE | if t.maker { MAKER } else { 0 };
        let extras = if scale_changed { X_SCALE } else { 0 }
            | if id_plain { 0 } else { X_ID }
            | if kind_plain { 0 } else { X_TYPE };
        if extras != 0 {
            tag |= EXTRAS;
        }
        let (zt, zp) = (zigzag(dt), zigzag(dp));
        if extras == 0 && t.asset < ASSET_ESCAPE as usize && zt | zp | qty < SHORT_LIMIT {
            // The usual trade: 3 header bytes and 3 x 4 bytes at most, built in a register.
            let head = u32::from(tag | t.asset as u8)
                | u32::from(self.state.seq as u8) << 8
                | u32::from(a.seq as u8) << 16;
            Short::new(head, 3)
                .push(short_uvarint(zt as u32))
                .push(short_uvarint(zp as u32))
                .push(short_uvarint(qty as u32))
                .write(out, framed);
        } else {
            append(out, framed, |out| {
                if t.asset < ASSET_ESCAPE as usize {
                    out.push(tag | t.asset as u8);
                } else {
                    out.push(tag | ASSET_ESCAPE);
                    put_uvarint(out, (t.asset - ASSET_ESCAPE as usize) as u64);
                }
                out.push(self.state.seq as u8);
                out.push(a.seq as u8);
                if extras != 0 {
                    out.push(extras);
                    if scale_changed {
                        out.push(ps);
                        out.push(qs);
                    }
                    if !id_plain {
                        put_ivarint(out, t.trade_id.wrapping_sub(a.trade_id).wrapping_sub(1) as i64);
                    }
                    if !kind_plain {
                        put_kind(out, t.kind);
                    }
                }
                put_uvarint(out, zt);
                put_uvarint(out, zp);
                put_uvarint(out, qty);
            });
            if !kind_plain {
                a.kind.clear();
                a.kind.extend_from_slice(t.kind);
            }
        }
        a.price_scale = ps;
        a.qty_scale = qs;
        a.time = t.time;
        a.price = price;
        a.trade_id = t.trade_id;
        a.seq = a.seq.wrapping_add(1);
        self.state.seq = self.state.seq.wrapping_add(1);
        Ok(())
    }

    /// Heartbeat frame carrying the server time (ms).
    pub fn heartbeat(&mut self, now_ms: u64) -> Vec<u8> {
        let mut out = vec![HEARTBEAT];
        put_uvarint(&mut out, self.state.seq);
        put_uvarint(&mut out, now_ms);
        self.state.seq = self.state.seq.wrapping_add(1);
        out
    }

    /// Gap notice: trades of `asset` between `last_id` and `next_id` are missing. The next trade
    /// id expected is `next_id`. `reason`: 0 = id jump, 1 = reconnect.
    pub fn gap(
        &mut self,
        asset: usize,
        last_id: u64,
        next_id: u64,
        reason: u8,
    ) -> Result<Vec<u8>, CodecError> {
        let count = self.state.assets.len();
        let a = self.state.assets.get_mut(asset).ok_or(CodecError::UnknownAsset {
            index: asset as u64,
            count,
        })?;
        let mut out = vec![GAP];
        put_uvarint(&mut out, self.state.seq);
        put_uvarint(&mut out, asset as u64);
        put_uvarint(&mut out, a.seq);
        put_uvarint(&mut out, last_id);
        put_uvarint(&mut out, next_id);
        out.push(reason);
        a.seq = a.seq.wrapping_add(1);
        a.trade_id = next_id.wrapping_sub(1);
        self.state.seq = self.state.seq.wrapping_add(1);
        Ok(out)
    }

    /// Snapshot frame: the state of every asset; a consumer can start or resync from it.
    pub fn snapshot(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.state.assets.len() * 40);
        out.push(SNAPSHOT);
        put_uvarint(&mut out, self.state.seq);
        self.state.write_assets(&mut out);
        self.state.seq = self.state.seq.wrapping_add(1);
        out
    }
}

/// One decoded trade. `price` is in units of 10^-price_scale, `qty` of 10^-qty_scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade<'a> {
    pub asset: usize,
    pub maker: bool,
    pub time: i64,
    pub price: i64,
    pub price_scale: u8,
    pub qty: u64,
    pub qty_scale: u8,
    pub trade_id: u64,
    pub kind: &'a [u8],
    pub seq: u64,
    pub asset_seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    Trade(Trade<'a>),
    Heartbeat {
        seq: u64,
        time: u64,
    },
    Gap {
        seq: u64,
        asset: usize,
        asset_seq: u64,
        last_id: u64,
        next_id: u64,
        reason: u8,
    },
    /// The decoder's state was replaced; read it with [`Decoder::state`].
    Snapshot {
        seq: u64,
    },
}

/// Frames went missing before this one. For the stream, `missing` is exact for control frames and
/// modulo 256 for trade frames (they carry the low byte of the sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loss {
    /// `None`: the stream sequence; `Some(i)`: asset i's own sequence.
    pub asset: Option<usize>,
    pub missing: u64,
}

/// What one frame tells: losses detected at it, and its message unless an asset's deltas can no
/// longer be applied (its frames were lost; it stays out of sync until the next snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded<'a> {
    pub stream_loss: Option<Loss>,
    pub asset_loss: Option<Loss>,
    pub message: Option<Message<'a>>,
}

#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
    stale: Vec<bool>,
}

impl Decoder {
    /// Starts from a v2 header or snapshot payload.
    pub fn from_header(h: &[u8]) -> Result<Self, CodecError> {
        let state = State::from_header(h)?;
        let stale = vec![false; state.assets.len()];
        Ok(Decoder { state, stale })
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// True while asset `i` is out of sync after lost frames (until the next snapshot).
    pub fn is_stale(&self, i: usize) -> bool {
        self.stale.get(i).copied().unwrap_or(false)
    }

    #[inline(always)]
    fn asset_index(&self, r: &mut Reader, tag: u8) -> Result<usize, CodecError> {
        let low = tag & ASSET_ESCAPE;
        let idx = if low == ASSET_ESCAPE {
            r.uvarint()?.saturating_add(u64::from(ASSET_ESCAPE))
        } else {
            u64::from(low)
        };
        if idx >= self.state.assets.len() as u64 {
            return Err(CodecError::UnknownAsset {
                index: idx,
                count: self.state.assets.len(),
            });
        }
        Ok(idx as usize)
    }

    /// Advances the stream sequence to the frame's full number; reports a mismatch.
    fn stream_seq(&mut self, got: u64) -> Option<Loss> {
        let expected = self.state.seq;
        self.state.seq = got.wrapping_add(1);
        (got != expected).then_some(Loss {
            asset: None,
            missing: got.wrapping_sub(expected),
        })
    }

    /// Decodes one frame payload. On error the state is unchanged.
    pub fn decode(&mut self, payload: &[u8]) -> Result<Decoded<'_>, CodecError> {
        let Some(&tag) = payload.first() else {
            return Err(CodecError::Truncated { offset: 0 });
        };
        if tag & TRADE != 0 {
            return self.decode_trade(payload, tag);
        }
        let mut r = Reader::new(payload);
        r.pos = 1;
        match tag {
            HEARTBEAT => {
                let seq = r.uvarint()?;
                let time = r.uvarint()?;
                r.end()?;
                Ok(Decoded {
                    stream_loss: self.stream_seq(seq),
                    asset_loss: None,
                    message: Some(Message::Heartbeat { seq, time }),
                })
            }
            GAP => {
                let seq = r.uvarint()?;
                let asset = self.asset_index_full(r.uvarint()?)?;
                let asset_seq = r.uvarint()?;
                let last_id = r.uvarint()?;
                let next_id = r.uvarint()?;
                let reason = r.u8()?;
                r.end()?;
                let stream_loss = self.stream_seq(seq);
                let a = &mut self.state.assets[asset];
                let asset_loss = (asset_seq != a.seq).then_some(Loss {
                    asset: Some(asset),
                    missing: asset_seq.wrapping_sub(a.seq),
                });
                if asset_loss.is_some() {
                    self.stale[asset] = true;
                }
                a.seq = asset_seq.wrapping_add(1);
                a.trade_id = next_id.wrapping_sub(1);
                Ok(Decoded {
                    stream_loss,
                    asset_loss,
                    message: Some(Message::Gap {
                        seq,
                        asset,
                        asset_seq,
                        last_id,
                        next_id,
                        reason,
                    }),
                })
            }
            SNAPSHOT => {
                let seq = r.uvarint()?;
                let st = State::read_assets(&mut r, seq.wrapping_add(1))?;
                let same = st.assets.len() == self.state.assets.len()
                    && st
                        .assets
                        .iter()
                        .zip(&self.state.assets)
                        .all(|(a, b)| a.symbol == b.symbol);
                if !same {
                    return Err(CodecError::BadSnapshot(
                        "its asset list differs from the header's; start a new decoder from it".into(),
                    ));
                }
                let stream_loss = self.stream_seq(seq);
                self.state = st;
                self.stale.iter_mut().for_each(|s| *s = false);
                Ok(Decoded {
                    stream_loss,
                    asset_loss: None,
                    message: Some(Message::Snapshot { seq }),
                })
            }
            _ => Err(CodecError::UnknownKind { tag }),
        }
    }

    fn asset_index_full(&self, idx: u64) -> Result<usize, CodecError> {
        if idx >= self.state.assets.len() as u64 {
            return Err(CodecError::UnknownAsset {
                index: idx,
                count: self.state.assets.len(),
            });
        }
        Ok(idx as usize)
    }

    #[inline(always)]
    fn decode_trade(&mut self, payload: &[u8], tag: u8) -> Result<Decoded<'_>, CodecError> {
        let mut r = Reader::new(payload);
        r.pos = 1;
        let i = self.asset_index(&mut r, tag)?;
        let seq_low = r.u8()?;
        let aseq_low = r.u8()?;
        let a = &self.state.assets[i];
        let (mut ps, mut qs) = (a.price_scale, a.qty_scale);
        let mut trade_id = a.trade_id.wrapping_add(1);
        let mut kind: Option<&[u8]> = None;
        if tag & EXTRAS != 0 {
            let x = r.u8()?;
            if x & !(X_SCALE | X_ID | X_TYPE) != 0 || x == 0 {
                return Err(CodecError::BadFlags { flags: x });
            }
            if x & X_SCALE != 0 {
                ps = r.u8()?;
                qs = r.u8()?;
                if ps > MAX_SCALE || qs > MAX_SCALE || ps < a.price_scale || qs < a.qty_scale {
                    return Err(CodecError::BadHeader(format!(
                        "trade frame sets scales {ps}/{qs}: scales may only grow, to at most {MAX_SCALE}"
                    )));
                }
            }
            if x & X_ID != 0 {
                trade_id = trade_id.wrapping_add(r.ivarint()? as u64);
            }
            if x & X_TYPE != 0 {
                kind = Some(read_kind(&mut r)?);
            }
        }
        let dt = r.ivarint()?;
        let dp = r.ivarint()?;
        let qty = r.uvarint()?;
        r.end()?;

        // Values first (pure), so an error leaves the state unchanged.
        let values = (|| {
            let overflow = || CodecError::Overflow("delta overflows i64".into());
            let last = if ps > a.price_scale {
                a.price
                    .checked_mul(pow10(ps - a.price_scale) as i64)
                    .ok_or_else(overflow)?
            } else {
                a.price
            };
            let price = last.checked_add(dp).ok_or_else(overflow)?;
            let time = a.time.checked_add(dt).ok_or_else(overflow)?;
            Ok::<_, CodecError>((price, time))
        })();
        // Sequence numbers: the frame carries their low bytes.
        let exp = self.state.seq;
        let seq = exp.wrapping_add(u64::from(seq_low.wrapping_sub(exp as u8)));
        let aexp = a.seq;
        let asset_seq = aexp.wrapping_add(u64::from(aseq_low.wrapping_sub(aexp as u8)));
        let in_sync = asset_seq == aexp && !self.stale[i];
        let (price, time) = if in_sync { values? } else { (0, 0) };
        let stream_loss = self.stream_seq(seq);
        if !in_sync {
            let asset_loss = Some(Loss {
                asset: Some(i),
                missing: asset_seq.wrapping_sub(aexp),
            });
            self.stale[i] = true;
            self.state.assets[i].seq = asset_seq.wrapping_add(1);
            return Ok(Decoded {
                stream_loss,
                asset_loss,
                message: None,
            });
        }
        let a = &mut self.state.assets[i];
        if let Some(k) = kind {
            a.kind.clear();
            a.kind.extend_from_slice(k);
        }
        a.price_scale = ps;
        a.qty_scale = qs;
        a.price = price;
        a.time = time;
        a.trade_id = trade_id;
        a.seq = asset_seq.wrapping_add(1);
        let a = &self.state.assets[i];
        Ok(Decoded {
            stream_loss,
            asset_loss: None,
            message: Some(Message::Trade(Trade {
                asset: i,
                maker: tag & MAKER != 0,
                time,
                price,
                price_scale: ps,
                qty,
                qty_scale: qs,
                trade_id,
                kind: &a.kind,
                seq,
                asset_seq,
            })),
        })
    }
}

#[cfg(test)]
mod tests;

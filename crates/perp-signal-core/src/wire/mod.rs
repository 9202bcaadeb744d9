//! The trade wire formats: v1 (byte-compatible with the original service) and v2 (lossless, the
//! default), plus the u32-LE length framing both travel in. docs/wire-format.md is the byte-level
//! spec; each layout is owned by exactly one module here.
pub mod frame;
pub mod v1;
pub mod v2;

use crate::error::CodecError;

/// Which format a header announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    V1,
    V2,
}

/// One trade as the exchange sent it, borrowed: decimal values stay the exchange's strings until
/// the encoder scales them, so nothing is rounded on the way.
#[derive(Debug, Clone, Copy)]
pub struct TradeRef<'a> {
    pub asset: usize,
    /// `T`, ms since the Unix epoch.
    pub time: i64,
    /// `t`.
    pub trade_id: u64,
    pub price: &'a [u8],
    pub qty: &'a [u8],
    /// `m`: the buyer is the maker.
    pub maker: bool,
    /// `X`, e.g. `MARKET`.
    pub kind: &'a [u8],
}

/// What an encoder is built from: one entry per asset, in wire order.
#[derive(Debug, Clone)]
pub struct AssetSpec {
    pub symbol: String,
    pub ref_price: String,
    pub ref_qty: String,
    pub price_scale: Option<u8>,
    pub qty_scale: Option<u8>,
}

/// Symbols go into headers and JSON unescaped, so they are limited to what exchanges use.
pub fn check_symbol(sym: &[u8]) -> Result<(), CodecError> {
    let ok = !sym.is_empty()
        && sym.len() <= 32
        && sym
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(CodecError::BadAssets(format!(
            "symbol {:?} must be 1..32 characters of A-Z, a-z, 0-9, '_', '-', '.'",
            String::from_utf8_lossy(&sym[..sym.len().min(40)])
        )))
    }
}

pub(crate) fn check_asset_list(assets: &[AssetSpec], max: usize) -> Result<(), CodecError> {
    if assets.is_empty() || assets.len() > max {
        return Err(CodecError::BadAssets(format!(
            "{} assets given; this wire carries 1..{max}",
            assets.len()
        )));
    }
    for (i, a) in assets.iter().enumerate() {
        check_symbol(a.symbol.as_bytes())?;
        if assets[..i].iter().any(|b| b.symbol == a.symbol) {
            return Err(CodecError::BadAssets(format!(
                "symbol {} is listed twice",
                a.symbol
            )));
        }
    }
    Ok(())
}

/// Tells a header's format from its first bytes: v1 starts with 0x01, v2 with `PSW` 0x02 (or a
/// v2 snapshot frame, tag 0x03, which a consumer may also start from).
pub fn detect(header: &[u8]) -> Result<Wire, CodecError> {
    match header {
        [] => Err(CodecError::Truncated { offset: 0 }),
        [0x01, ..] => Ok(Wire::V1),
        [v2::SNAPSHOT, ..] => Ok(Wire::V2),
        [b'P', b'S', b'W', 0x02, ..] => Ok(Wire::V2),
        [b'P', b'S', b'W', v, ..] => Err(CodecError::WrongVersion(format!(
            "header announces perp-signal wire version {v}; this decoder reads v1 and v2: upgrade it"
        ))),
        [b, ..] => Err(CodecError::BadMagic(format!(
            "first byte 0x{b:02x} is neither the v1 version byte 0x01 nor the v2 magic 'PSW'; pass the header frame (the one after START), not a trade frame"
        ))),
    }
}

/// Read cursor over one frame with bounds-checked primitives.
pub(crate) struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    #[inline]
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(CodecError::Truncated { offset: self.pos })?;
        self.pos += 1;
        Ok(b)
    }
    #[inline]
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(CodecError::Truncated {
                offset: self.buf.len(),
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    #[inline]
    pub fn u64_le(&mut self) -> Result<u64, CodecError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    #[inline]
    pub fn uvarint(&mut self) -> Result<u64, CodecError> {
        crate::varint::get_uvarint(self.buf, &mut self.pos)
    }
    #[inline]
    pub fn ivarint(&mut self) -> Result<i64, CodecError> {
        crate::varint::get_ivarint(self.buf, &mut self.pos)
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn end(&self) -> Result<(), CodecError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(CodecError::TrailingBytes {
                offset: self.pos,
                extra: self.buf.len() - self.pos,
            })
        }
    }
}

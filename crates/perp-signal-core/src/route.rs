//! Which asset a wire v2 frame belongs to, read from its first bytes without decoding it. A
//! transport that fans frames out per symbol (NATS subjects) needs only this, and holding no
//! decoder state it cannot fall out of step with the encoder when a frame is skipped.
use crate::error::CodecError;
use crate::varint::get_uvarint;
use crate::wire::frame::Frames;
use crate::wire::v2::{ASSET_ESCAPE, GAP, HEARTBEAT, SNAPSHOT, TRADE};

/// Where a v2 frame belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A trade or gap notice of this asset (index in the header's asset list).
    Asset(usize),
    /// A frame of the whole stream: heartbeat or snapshot.
    Stream,
}

/// The route of one v2 frame payload.
pub fn route(payload: &[u8]) -> Result<Route, CodecError> {
    let tag = *payload.first().ok_or(CodecError::Truncated { offset: 0 })?;
    let mut pos = 1;
    if tag & TRADE != 0 {
        let low = tag & ASSET_ESCAPE;
        if low != ASSET_ESCAPE {
            return Ok(Route::Asset(usize::from(low)));
        }
        let extra = get_uvarint(payload, &mut pos)?;
        return Ok(Route::Asset(index(extra.saturating_add(u64::from(ASSET_ESCAPE)))));
    }
    match tag {
        GAP => {
            get_uvarint(payload, &mut pos)?; // stream sequence number
            Ok(Route::Asset(index(get_uvarint(payload, &mut pos)?)))
        }
        HEARTBEAT | SNAPSHOT => Ok(Route::Stream),
        _ => Err(CodecError::UnknownKind { tag }),
    }
}

fn index(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// Routes every frame of a u32-LE framed batch, in order; stops at the first bad frame.
pub fn route_frames(framed: &[u8]) -> Result<Vec<Route>, CodecError> {
    Frames::new(framed).map(|f| f.and_then(route)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::put_frame;
    use crate::wire::v2::Encoder;
    use crate::wire::{AssetSpec, TradeRef};

    fn assets(n: usize) -> Vec<AssetSpec> {
        (0..n)
            .map(|i| AssetSpec {
                symbol: format!("S{i}USDT"),
                ref_price: "100.00".into(),
                ref_qty: "1.000".into(),
                price_scale: None,
                qty_scale: None,
            })
            .collect()
    }

    fn trade(asset: usize, id: u64) -> TradeRef<'static> {
        TradeRef {
            asset,
            time: 1_700_000_000_000 + id as i64,
            trade_id: id,
            price: b"100.25",
            qty: b"0.500",
            maker: id.is_multiple_of(2),
            kind: b"MARKET",
        }
    }

    #[test]
    fn routes_trades_gaps_and_stream_frames_of_every_asset_index() {
        // 40 assets: indexes below and above the 5-bit escape.
        let mut enc = Encoder::new(&assets(40), 1_700_000_000_000).expect("valid assets");
        let mut framed = Vec::new();
        let mut want = Vec::new();
        for a in [0usize, 1, 30, 31, 32, 39] {
            enc.encode_framed(&trade(a, 10 + a as u64), &mut framed)
                .expect("encodes");
            want.push(Route::Asset(a));
            let gap = enc.gap(a, 20, 25, 0).expect("gap");
            put_frame(&mut framed, &gap);
            want.push(Route::Asset(a));
        }
        put_frame(&mut framed, &enc.heartbeat(5));
        want.push(Route::Stream);
        put_frame(&mut framed, &enc.snapshot());
        want.push(Route::Stream);
        assert_eq!(route_frames(&framed).expect("routes"), want);
    }

    #[test]
    fn rejects_what_is_not_a_v2_frame() {
        assert!(matches!(route(&[]), Err(CodecError::Truncated { .. })));
        assert!(matches!(
            route(&[0x7f]),
            Err(CodecError::UnknownKind { tag: 0x7f })
        ));
        assert!(route(&[GAP, 0x80]).is_err());
        assert!(route(&[TRADE | ASSET_ESCAPE]).is_err());
        assert!(route_frames(&[5, 0, 0, 0, 1]).is_err());
    }
}

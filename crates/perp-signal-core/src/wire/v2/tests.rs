use super::*;
use crate::decimal::{fixed_string, write_fixed_signed};

fn spec(sym: &str, price: &str, ps: Option<u8>, qs: Option<u8>) -> AssetSpec {
    AssetSpec {
        symbol: sym.into(),
        ref_price: price.into(),
        ref_qty: "1".into(),
        price_scale: ps,
        qty_scale: qs,
    }
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Debug, Clone)]
struct Owned {
    asset: usize,
    time: i64,
    id: u64,
    price: String,
    qty: String,
    maker: bool,
    kind: String,
}

impl Owned {
    fn as_ref(&self) -> TradeRef<'_> {
        TradeRef {
            asset: self.asset,
            time: self.time,
            trade_id: self.id,
            price: self.price.as_bytes(),
            qty: self.qty.as_bytes(),
            maker: self.maker,
            kind: self.kind.as_bytes(),
        }
    }
}

fn text(v: i64, scale: u8) -> String {
    let mut o = Vec::new();
    write_fixed_signed(&mut o, v, scale);
    String::from_utf8(o).unwrap()
}

/// Many assets (past the one-byte index), id jumps, odd types and values with more decimals than
/// the announced scale.
fn random_trades(n: usize, assets: usize, seed: u64) -> Vec<Owned> {
    let mut rng = Rng(seed);
    let mut ids: Vec<u64> = (0..assets as u64).map(|a| a * 1_000_000).collect();
    let mut t = 1_700_000_000_000i64;
    (0..n)
        .map(|_| {
            let asset = rng.below(assets as u64) as usize;
            ids[asset] += if rng.below(20) == 0 { 1 + rng.below(100) } else { 1 };
            t += rng.below(30) as i64;
            let decimals = if rng.below(500) == 0 { 6 } else { 2 };
            let price = fixed_string(1_000_000 + rng.below(10_000), decimals);
            let kind = match rng.below(50) {
                0 => "LIQUIDATION",
                1 => "WEIRD_TYPE",
                _ => "MARKET",
            };
            Owned {
                asset,
                time: t,
                id: ids[asset],
                price,
                qty: fixed_string(1 + rng.below(100_000), 3),
                maker: rng.below(2) == 0,
                kind: kind.into(),
            }
        })
        .collect()
}

fn check_same(t: &Trade, o: &Owned) {
    assert_eq!(t.asset, o.asset);
    assert_eq!(t.time, o.time);
    assert_eq!(t.trade_id, o.id);
    assert_eq!(t.maker, o.maker);
    assert_eq!(t.kind, o.kind.as_bytes());
    // Exact value: same digits once both are at the wider scale.
    let p = crate::decimal::parse(o.price.as_bytes()).unwrap();
    assert_eq!(Some(t.price as u64), p.at_scale(t.price_scale), "{}", o.price);
    let q = crate::decimal::parse(o.qty.as_bytes()).unwrap();
    assert_eq!(Some(t.qty), q.at_scale(t.qty_scale));
}

#[test]
fn lossless_round_trip_with_many_assets() {
    let specs: Vec<AssetSpec> = (0..40)
        .map(|i| spec(&format!("S{i}USDT"), "10000.00", Some(2), Some(3)))
        .collect();
    let mut e = Encoder::new(&specs, 1_700_000_000_000).unwrap();
    let mut d = Decoder::from_header(&e.header()).unwrap();
    let trades = random_trades(50_000, 40, 3);
    let mut buf = Vec::new();
    for (i, o) in trades.iter().enumerate() {
        buf.clear();
        e.encode(&o.as_ref(), &mut buf).unwrap();
        let got = d.decode(&buf).unwrap();
        assert_eq!((got.stream_loss, got.asset_loss), (None, None));
        let Some(Message::Trade(t)) = got.message else {
            panic!("not a trade")
        };
        assert_eq!(t.seq, i as u64);
        check_same(&t, o);
    }
    assert_eq!(&e.state, d.state());
}

#[test]
fn exact_strings_at_the_tick_scale() {
    let mut e = Encoder::new(&[spec("BTCUSDT", "61800.30", Some(2), Some(3))], 0).unwrap();
    let mut d = Decoder::from_header(&e.header()).unwrap();
    let mut buf = Vec::new();
    let o = Owned {
        asset: 0,
        time: 1,
        id: 1,
        price: "61800.30".into(),
        qty: "0.006".into(),
        maker: false,
        kind: "MARKET".into(),
    };
    e.encode(&o.as_ref(), &mut buf).unwrap();
    let Some(Message::Trade(t)) = d.decode(&buf).unwrap().message else {
        panic!()
    };
    assert_eq!(text(t.price, t.price_scale), "61800.30");
    assert_eq!(fixed_string(t.qty, t.qty_scale), "0.006");
}

#[test]
fn v2_is_refused_by_v1_and_the_reverse() {
    let s = [spec("BTCUSDT", "1", None, None)];
    let h1 = crate::wire::v1::Encoder::new(&s, 0).unwrap().header();
    assert_eq!(Decoder::from_header(&h1).unwrap_err().code(), "E_WRONG_VERSION");
    let mut h2 = Encoder::new(&s, 0).unwrap().header();
    assert_eq!(&h2[..4], b"PSW\x02");
    h2[3] = 3;
    assert_eq!(Decoder::from_header(&h2).unwrap_err().code(), "E_WRONG_VERSION");
    assert_eq!(
        Decoder::from_header(&[0x80, 0]).unwrap_err().code(),
        "E_BAD_MAGIC"
    );
}

fn encode_all(e: &mut Encoder, trades: &[Owned]) -> Vec<Vec<u8>> {
    trades
        .iter()
        .map(|o| {
            let mut b = Vec::new();
            e.encode(&o.as_ref(), &mut b).unwrap();
            b
        })
        .collect()
}

#[test]
fn lost_frames_are_reported_and_snapshot_resyncs() {
    let specs = [
        spec("BTCUSDT", "10000", Some(2), Some(3)),
        spec("ETHUSDT", "10000", Some(2), Some(3)),
    ];
    let mut e = Encoder::new(&specs, 0).unwrap();
    let mut d = Decoder::from_header(&e.header()).unwrap();
    let mut trades = random_trades(10, 2, 5);
    for (i, t) in trades.iter_mut().enumerate() {
        t.asset = [0, 1, 0, 0, 1, 0, 1, 1, 0, 0][i];
    }
    let frames = encode_all(&mut e, &trades);
    d.decode(&frames[0]).unwrap();
    d.decode(&frames[1]).unwrap();
    // Frame 2 (asset 0) lost: frame 3 reports a stream loss of 1 and asset 0 loss of 1.
    let r = d.decode(&frames[3]).unwrap();
    assert_eq!(
        r.stream_loss,
        Some(Loss {
            asset: None,
            missing: 1
        })
    );
    assert_eq!(
        r.asset_loss,
        Some(Loss {
            asset: Some(0),
            missing: 1
        })
    );
    assert_eq!(r.message, None);
    // Asset 1 is intact: its trade decodes, the stream is back in step.
    let r = d.decode(&frames[4]).unwrap();
    assert_eq!((r.stream_loss, r.asset_loss), (None, None));
    let Some(Message::Trade(t)) = r.message else {
        panic!()
    };
    check_same(&t, &trades[4]);
    // Asset 0 stays out of sync until a snapshot.
    let r = d.decode(&frames[5]).unwrap();
    assert_eq!(
        r.asset_loss,
        Some(Loss {
            asset: Some(0),
            missing: 0
        })
    );
    assert!(d.is_stale(0));
    let snap = e.snapshot();
    let r = d.decode(&snap).unwrap();
    assert_eq!(
        r.stream_loss,
        Some(Loss {
            asset: None,
            missing: 4
        })
    );
    assert!(!d.is_stale(0));
    let more = random_trades(3, 2, 8);
    for (f, o) in encode_all(&mut e, &more).iter().zip(&more) {
        let r = d.decode(f).unwrap();
        assert_eq!((r.stream_loss, r.asset_loss), (None, None));
        let Some(Message::Trade(t)) = r.message else {
            panic!()
        };
        check_same(&t, o);
    }
    // A consumer can also start from a snapshot alone.
    let snap = e.snapshot();
    let mut fresh = Decoder::from_header(&snap).unwrap();
    assert_eq!(fresh.state(), e.state());
    let hb = e.heartbeat(123);
    let r = fresh.decode(&hb).unwrap();
    assert_eq!(
        r.message,
        Some(Message::Heartbeat {
            seq: e.state().seq - 1,
            time: 123
        })
    );
    assert_eq!(r.stream_loss, None);
}

#[test]
fn gap_notice_and_heartbeat_round_trip() {
    let specs = [spec("BTCUSDT", "10000", Some(2), Some(3))];
    let mut e = Encoder::new(&specs, 0).unwrap();
    let mut d = Decoder::from_header(&e.header()).unwrap();
    let g = e.gap(0, 41, 50, 1).unwrap();
    assert_eq!(g, [GAP, 0, 0, 0, 41, 50, 1]);
    let r = d.decode(&g).unwrap();
    assert_eq!(
        r.message,
        Some(Message::Gap {
            seq: 0,
            asset: 0,
            asset_seq: 0,
            last_id: 41,
            next_id: 50,
            reason: 1
        })
    );
    // The trade after the gap (id 50) needs no id field.
    let o = Owned {
        asset: 0,
        time: 5,
        id: 50,
        price: "10000.10".into(),
        qty: "1.000".into(),
        maker: true,
        kind: "MARKET".into(),
    };
    let f = encode_all(&mut e, std::slice::from_ref(&o)).remove(0);
    assert_eq!(f[0] & EXTRAS, 0);
    let Some(Message::Trade(t)) = d.decode(&f).unwrap().message else {
        panic!()
    };
    check_same(&t, &o);
    assert_eq!(e.heartbeat(1_700_000_000_000)[..2], [HEARTBEAT, 2]);
    assert_eq!(e.gap(3, 1, 2, 0).unwrap_err().code(), "E_UNKNOWN_ASSET");
}

#[test]
fn hostile_frames_give_typed_errors_and_leave_state_alone() {
    let specs = [spec("BTCUSDT", "10000", Some(2), Some(3))];
    let e = Encoder::new(&specs, 0).unwrap();
    let h = e.header();
    let mut d = Decoder::from_header(&h).unwrap();
    let before = d.state().clone();
    let code = |d: &mut Decoder, b: &[u8]| d.decode(b).unwrap_err().code();
    assert_eq!(code(&mut d, &[]), "E_TRUNCATED");
    assert_eq!(code(&mut d, &[0x80, 0]), "E_TRUNCATED");
    assert_eq!(code(&mut d, &[0x81, 0, 0, 0, 0, 0]), "E_UNKNOWN_ASSET");
    assert_eq!(
        code(&mut d, &[0x9f, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0]),
        "E_UNKNOWN_ASSET"
    );
    assert_eq!(code(&mut d, &[0x04]), "E_UNKNOWN_KIND");
    assert_eq!(code(&mut d, &[0x80, 0, 0, 0, 0, 0, 0]), "E_TRAILING_BYTES");
    assert_eq!(code(&mut d, &[0xa0, 0, 0, 0x40, 0, 0, 0]), "E_BAD_FLAGS");
    assert_eq!(code(&mut d, &[0xa0, 0, 0, 0x01, 99, 3, 0, 0, 0]), "E_BAD_HEADER");
    let mut long = vec![0x80, 0, 0];
    long.extend_from_slice(&[0xff; 11]);
    assert_eq!(code(&mut d, &long), "E_VARINT_TOO_LONG");
    // A price delta that overflows i64 from the current price (1000000).
    let mut of = vec![0x80, 0, 0, 0];
    crate::varint::put_ivarint(&mut of, i64::MAX);
    of.push(0);
    assert_eq!(code(&mut d, &of), "E_OVERFLOW");
    assert_eq!(d.state(), &before);
    for cut in 0..h.len() {
        assert!(Decoder::from_header(&h[..cut]).is_err());
    }
    // A count that promises more assets than the bytes hold is refused before allocation.
    let mut lie = MAGIC.to_vec();
    lie.extend_from_slice(&[0, 0x80, 0x08]);
    assert_eq!(Decoder::from_header(&lie).unwrap_err().code(), "E_TRUNCATED");
}

#[test]
fn scale_grows_in_band_instead_of_rounding() {
    let mut e = Encoder::new(&[spec("1000SATSUSDT", "0.0003", None, None)], 0).unwrap();
    assert_eq!(e.state().assets[0].price_scale, 4);
    let mut d = Decoder::from_header(&e.header()).unwrap();
    let o = Owned {
        asset: 0,
        time: 0,
        id: 1,
        price: "0.00031234".into(),
        qty: "60000000000".into(),
        maker: false,
        kind: "MARKET".into(),
    };
    let f = encode_all(&mut e, std::slice::from_ref(&o)).remove(0);
    let Some(Message::Trade(t)) = d.decode(&f).unwrap().message else {
        panic!()
    };
    assert_eq!(t.price_scale, 8);
    assert_eq!(text(t.price, t.price_scale), "0.00031234");
    assert_eq!(fixed_string(t.qty, t.qty_scale), "60000000000");
    let mut s = spec("X", "1", Some(19), None);
    assert_eq!(Encoder::new(&[s.clone()], 0).unwrap_err().code(), "E_SCALE");
    s.price_scale = None;
    s.symbol = "BAD SYMBOL".into();
    assert_eq!(Encoder::new(&[s], 0).unwrap_err().code(), "E_BAD_ASSETS");
}

#[test]
fn inferred_scale_grows_to_the_exchange_string() {
    // A reference of "61800.3" infers scale 1; the exchange writes "61800.30".
    let mut e = Encoder::new(&[spec("BTCUSDT", "61800.3", None, None)], 0).unwrap();
    let mut d = Decoder::from_header(&e.header()).unwrap();
    let o = Owned {
        asset: 0,
        time: 1,
        id: 1,
        price: "61800.30".into(),
        qty: "0.010".into(),
        maker: false,
        kind: "MARKET".into(),
    };
    let f = encode_all(&mut e, std::slice::from_ref(&o)).remove(0);
    let Some(Message::Trade(t)) = d.decode(&f).unwrap().message else {
        panic!()
    };
    assert_eq!(text(t.price, t.price_scale), "61800.30");
    assert_eq!(fixed_string(t.qty, t.qty_scale), "0.010");
}

/// The register-built frame (asset below 31, no extras, every varint below 2^28) and the general
/// writer must give the bytes docs/wire-format.md defines, on both sides of each limit.
#[test]
fn frames_are_the_spec_bytes_on_both_sides_of_the_short_path_limit() {
    use crate::varint::{put_uvarint, zigzag};
    let specs: Vec<AssetSpec> = (0..40)
        .map(|i| spec(&format!("A{i}"), "10000000", Some(2), Some(3)))
        .collect();
    let t0 = 1_700_000_000_000i64;
    let mut enc = Encoder::new(&specs, t0).unwrap();
    let lim = 1i64 << 27;
    // (asset, time delta, price delta in ticks, qty in steps, maker)
    let steps: [(usize, i64, i64, u64, bool); 9] = [
        (0, 0, 0, 1, false),
        (30, 127, 63, 127, true),
        (30, lim - 1, lim - 1, (1 << 28) - 1, true),
        (30, lim, 0, 1 << 28, false),
        (31, 5, 7, 300, true),
        (39, 5, -lim - 1, 300, false),
        (0, -lim - 1, 10, 1_000_000_000_000, true),
        (0, 1, 1 << 40, 5, false),
        (0, 0, 0, 1 << 21, true),
    ];
    let (mut times, mut prices, mut ids, mut seqs) =
        ([t0; 40], [1_000_000_000i64; 40], [0u64; 40], [0u8; 40]);
    for (seq, (asset, dt, dp, qty, maker)) in steps.into_iter().enumerate() {
        times[asset] += dt;
        prices[asset] += dp;
        ids[asset] += 1;
        let (p, q) = (text(prices[asset], 2), text(qty as i64, 3));
        let o = Owned {
            asset,
            time: times[asset],
            id: ids[asset],
            price: p,
            qty: q,
            maker,
            kind: "MARKET".into(),
        };
        let tag = TRADE | if maker { MAKER } else { 0 };
        let mut want = vec![tag | asset.min(31) as u8];
        if asset >= 31 {
            put_uvarint(&mut want, (asset - 31) as u64);
        }
        want.extend_from_slice(&[seq as u8, seqs[asset]]);
        seqs[asset] += 1;
        put_uvarint(&mut want, zigzag(dt));
        put_uvarint(&mut want, zigzag(dp));
        put_uvarint(&mut want, qty);
        let mut want_framed = (want.len() as u32).to_le_bytes().to_vec();
        want_framed.extend_from_slice(&want);

        let mut bare = enc.clone();
        let mut got = vec![0xee];
        bare.encode(&o.as_ref(), &mut got).unwrap();
        assert_eq!(got[1..], want[..], "{asset} {dt} {dp} {qty}");
        let mut got = vec![0xee];
        enc.encode_framed(&o.as_ref(), &mut got).unwrap();
        assert_eq!(got[1..], want_framed[..], "{asset} {dt} {dp} {qty}");
        assert_eq!(bare.state(), enc.state());
    }
}

/// The smallest asset record an encoder can write is 9 bytes (1-byte symbol, time, price, id,
/// seq and type code of one byte each): a decoder must take such a header and snapshot, not
/// call them truncated.
#[test]
fn the_smallest_asset_records_an_encoder_writes_are_decoded() {
    let mut e = Encoder::new(&[spec("X", "0", Some(0), Some(0))], 0).unwrap();
    let h = e.header();
    assert_eq!(h.len(), 4 + 1 + 1 + 9, "{h:02x?}");
    let d = Decoder::from_header(&h).unwrap();
    assert_eq!(d.state(), e.state());
    let s = e.snapshot();
    assert_eq!(s.len(), 1 + 1 + 1 + 9, "{s:02x?}");
    assert_eq!(Decoder::from_header(&s).unwrap().state(), e.state());
    let mut d = Decoder::from_header(&h).unwrap();
    assert!(matches!(
        d.decode(&s).unwrap().message,
        Some(Message::Snapshot { seq: 0 })
    ));
    // Two such assets, and a count that promises more records than the bytes can hold.
    let two = Encoder::new(
        &[spec("X", "0", Some(0), Some(0)), spec("Y", "0", Some(0), Some(0))],
        0,
    )
    .unwrap()
    .header();
    assert_eq!(Decoder::from_header(&two).unwrap().state().assets.len(), 2);
    let mut lie = two.clone();
    lie[5] = 3;
    assert_eq!(Decoder::from_header(&lie).unwrap_err().code(), "E_TRUNCATED");
}

/// A state handed to `from_state` is checked like a header: a scale past MAX_SCALE would make the
/// encoder scale values by a clamped power of ten, i.e. encode wrong prices.
#[test]
fn from_state_refuses_what_a_header_would() {
    let good = Encoder::new(&[spec("BTCUSDT", "1", Some(2), Some(3))], 0)
        .unwrap()
        .state()
        .clone();
    assert_eq!(Encoder::from_state(good.clone()).unwrap().state(), &good);
    let mut bad = good.clone();
    bad.assets[0].price_scale = 30;
    assert_eq!(Encoder::from_state(bad).unwrap_err().code(), "E_BAD_HEADER");
    let mut bad = good.clone();
    bad.assets[0].qty_scale = 19;
    assert_eq!(Encoder::from_state(bad).unwrap_err().code(), "E_BAD_HEADER");
    let mut bad = good.clone();
    bad.assets[0].kind = b"".to_vec();
    assert!(Encoder::from_state(bad).is_err());
    let mut bad = good;
    bad.assets.push(bad.assets[0].clone());
    assert!(Encoder::from_state(bad).is_err());
}

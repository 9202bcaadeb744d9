use super::*;
use crate::decimal::fixed_string;
use crate::wire::frame::{put_frame, Frames};

fn spec(sym: &str, price: &str) -> AssetSpec {
    AssetSpec {
        symbol: sym.into(),
        ref_price: price.into(),
        ref_qty: "1".into(),
        price_scale: None,
        qty_scale: None,
    }
}

fn trade<'a>(asset: usize, time: i64, price: &'a str, qty: &'a str, maker: bool) -> TradeRef<'a> {
    TradeRef {
        asset,
        time,
        trade_id: 0,
        price: price.as_bytes(),
        qty: qty.as_bytes(),
        maker,
        kind: b"MARKET",
    }
}

/// A decoder written the way ../shared/spec/wire-v1.md reads, as the original clients are: float
/// running sums.
struct SpecDecoder {
    times: Vec<i64>,
    prices: Vec<f64>,
}

impl SpecDecoder {
    fn new(h: &[u8]) -> Self {
        assert_eq!(h[0], 1);
        let n = h[1] as usize;
        let mut p = 2;
        for _ in 0..n {
            p += 1 + h[p] as usize;
        }
        let f = |p: usize| f64::from_le_bytes(h[p..p + 8].try_into().unwrap());
        let t = u64::from_le_bytes(h[p..p + 8].try_into().unwrap()) as i64;
        let prices = (0..n).map(|i| f(p + 8 + 8 * i)).collect();
        SpecDecoder {
            times: vec![t; n],
            prices,
        }
    }
    fn decode(&mut self, m: &[u8]) -> (usize, i64, f64, f64) {
        let a = (m[0] & 0x7f) as usize;
        let mut pos = 1;
        let dt = crate::varint::get_ivarint(m, &mut pos).unwrap();
        let dp = crate::varint::get_ivarint(m, &mut pos).unwrap();
        let q = crate::varint::get_uvarint(m, &mut pos).unwrap();
        self.times[a] += dt;
        self.prices[a] += dp as f64 / 100000.0;
        (a, self.times[a], self.prices[a], q as f64 / 100000.0)
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn spec_worked_example() {
    let mut e = Encoder::new(&[spec("BTCUSDT", "60000"), spec("ETHUSDT", "2500")], 1_000).unwrap();
    let mut out = Vec::new();
    e.encode(&trade(1, 1_135, "2500.0015", "0.0015", true), &mut out)
        .unwrap();
    assert_eq!(out, [0x81, 0x8E, 0x02, 0xAC, 0x02, 0x96, 0x01]);
    let e0 = Encoder::new(&[spec("BTCUSDT", "60000"), spec("ETHUSDT", "2500")], 1_000).unwrap();
    let mut d0 = Decoder::from_header(&e0.header(), None).unwrap();
    let t = d0.decode(&out).unwrap();
    assert_eq!(
        t,
        Trade {
            asset: 1,
            maker: true,
            time: 1_135,
            price: 250_000_150,
            qty: 150
        }
    );
}

#[test]
fn header_layout_matches_spec() {
    let e = Encoder::new(&[spec("BTCUSDT", "61800.3")], 1_723_161_256_322).unwrap();
    let h = e.header();
    let mut want = vec![0x01, 0x01, 0x07];
    want.extend_from_slice(b"BTCUSDT");
    want.extend_from_slice(&1_723_161_256_322u64.to_le_bytes());
    want.extend_from_slice(&61800.3f64.to_le_bytes());
    want.extend_from_slice(&1.0f64.to_le_bytes());
    assert_eq!(h, want);
}

/// 1,000,000 trades of a random walk in steps of 0.1 and 0.01: a spec-following float decoder
/// stays within 5e-6 of the truth (rounds to it at 5 decimals) and ours is exact; the original's
/// truncating encoder drifts.
#[test]
fn million_trade_random_walk_does_not_drift() {
    let mut e = Encoder::new(&[spec("BTCUSDT", "60000")], 0).unwrap();
    let h = e.header();
    let mut ours = Decoder::from_header(&h, None).unwrap();
    let mut spec_dec = SpecDecoder::new(&h);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut cents: i64 = 6_000_000;
    // The original: float state, (price - last) * 1e5 truncated toward zero.
    let mut orig_last = 60000.0f64;
    let mut orig_sum = 60000.0f64;
    let (mut max_err, mut orig_max_err, mut orig_wrong) = (0.0f64, 0.0f64, 0u32);
    let mut msg = Vec::with_capacity(16);
    for i in 0..1_000_000i64 {
        let step = if rng.below(2) == 0 { 10 } else { 1 };
        cents += if rng.below(2) == 0 { step } else { -step };
        let s = fixed_string(cents as u64, 2);
        msg.clear();
        e.encode(&trade(0, i, &s, "0.001", false), &mut msg).unwrap();
        let t = ours.decode(&msg).unwrap();
        assert_eq!(t.price, cents * 1000, "our decoder is exact at trade {i}");
        let (_, _, p, _) = spec_dec.decode(&msg);
        let truth = cents as f64 / 100.0;
        max_err = max_err.max((p - truth).abs());
        assert_eq!((p * 1e5).round() as i64, cents * 1000, "trade {i}");

        let pf: f64 = s.parse().unwrap();
        orig_sum += ((pf - orig_last) * 1e5).trunc() / 1e5;
        orig_last = pf;
        let err = (orig_sum - truth).abs();
        orig_max_err = orig_max_err.max(err);
        if err > 5e-6 {
            orig_wrong += 1;
        }
    }
    assert!(max_err < 1e-6, "spec decoder error {max_err}");
    assert!(orig_max_err > 1e-3, "original drift {orig_max_err}");
    assert!(orig_wrong > 900_000, "original wrong on {orig_wrong}");
}

#[test]
fn quantities_are_rounded_never_truncated() {
    let mut e = Encoder::new(&[spec("BTCUSDT", "60000")], 0).unwrap();
    let mut out = Vec::new();
    e.encode(&trade(0, 0, "60000", "0.009", false), &mut out).unwrap();
    // qty 900 = 84 07; the original sent 899.
    assert_eq!(&out[out.len() - 2..], &[0x84, 0x07]);
    assert_eq!(((0.009f64 * 1e5) as u64), 899);
}

#[test]
fn refuses_symbols_needing_more_than_5_decimals() {
    let mut e = Encoder::new(&[spec("1000SATSUSDT", "0.0003")], 0).unwrap();
    let mut out = Vec::new();
    let err = e
        .encode(&trade(0, 1, "0.00031234", "100", false), &mut out)
        .unwrap_err();
    assert_eq!(err.code(), "E_V1_PRECISION");
    let msg = err.to_string();
    assert!(msg.contains("1000SATSUSDT") && msg.contains("v2"), "{msg}");
    assert!(out.is_empty());
    // State unchanged: the next valid trade still encodes from the header's reference.
    e.encode(&trade(0, 1, "0.00031", "100", false), &mut out).unwrap();
    let mut d = Decoder::from_header(
        &Encoder::new(&[spec("1000SATSUSDT", "0.0003")], 0)
            .unwrap()
            .header(),
        None,
    )
    .unwrap();
    assert_eq!(d.decode(&out).unwrap().price, 31);

    let mut s = spec("1000SATSUSDT", "0.0003");
    s.price_scale = Some(8);
    let err = Encoder::new(&[s], 0).unwrap_err();
    assert_eq!(err.code(), "E_V1_PRECISION");
    assert!(err.to_string().contains("1000SATSUSDT"));
    assert!(err.to_string().contains("v2"));
}

fn walk_trades(n: usize, assets: usize, seed: u64) -> Vec<(usize, i64, String, String, bool)> {
    let mut rng = Rng(seed);
    let mut cents: Vec<i64> = (0..assets).map(|a| 1_000_000 * (a as i64 + 1)).collect();
    let mut t = 1_700_000_000_000i64;
    (0..n)
        .map(|_| {
            let a = rng.below(assets as u64) as usize;
            t += rng.below(50) as i64;
            cents[a] += rng.below(21) as i64 - 10;
            let q = 1 + rng.below(5000);
            (
                a,
                t,
                fixed_string(cents[a] as u64, 2),
                fixed_string(q, 3),
                rng.below(2) == 0,
            )
        })
        .collect()
}

/// Late joiners at random points decode every later trade exactly, with our decoder and with a
/// spec-following float decoder fed the adapted bytes.
#[test]
fn late_join_at_random_points_is_exact() {
    let specs = [
        spec("BTCUSDT", "10000"),
        spec("ETHUSDT", "20000"),
        spec("SOLUSDT", "30000"),
    ];
    let trades = walk_trades(20_000, 3, 7);
    let mut rng = Rng(99);
    for _round in 0..20 {
        let mut e = Encoder::new(&specs, 1_700_000_000_000).unwrap();
        let join_at = rng.below(trades.len() as u64) as usize;
        let mut out = Vec::new();
        for (a, t, p, q, m) in &trades[..join_at] {
            e.encode(&trade(*a, *t, p, q, *m), &mut out).unwrap();
        }
        let (h, mut join) = e.join();
        let mut ours = Decoder::from_header(&h, None).unwrap();
        let mut theirs = SpecDecoder::new(&h);
        let mut i = join_at;
        while i < trades.len() {
            let n = 1 + rng.below(64) as usize;
            let mut batch = Vec::new();
            for (a, t, p, q, m) in trades[i..(i + n).min(trades.len())].iter() {
                e.encode_framed(&trade(*a, *t, p, q, *m), &mut batch).unwrap();
            }
            let adapted = join.adapt(&batch).unwrap();
            let bytes = adapted.as_deref().unwrap_or(&batch);
            for (k, f) in Frames::new(bytes).enumerate() {
                let f = f.unwrap();
                let (a, t, p, q, m) = &trades[i + k];
                let d = ours.decode(f).unwrap();
                let cents = crate::decimal::to_scaled(p.as_bytes(), 5).unwrap().unwrap();
                assert_eq!((d.asset, d.time, d.price as u64, d.maker), (*a, *t, cents, *m));
                assert_eq!(
                    d.qty,
                    crate::decimal::to_scaled(q.as_bytes(), 5).unwrap().unwrap()
                );
                let (sa, st, sp, _) = theirs.decode(f);
                assert_eq!((sa, st), (*a, *t));
                assert_eq!((sp * 1e5).round() as u64, cents);
            }
            i += n;
        }
        assert!(join.caught_up());
    }
}

#[test]
fn adapt_shares_the_batch_once_caught_up() {
    let specs = [spec("BTCUSDT", "100"), spec("ETHUSDT", "200")];
    let mut e = Encoder::new(&specs, 1000).unwrap();
    let mut out = Vec::new();
    e.encode(&trade(0, 1500, "101", "1", false), &mut out).unwrap();
    e.encode(&trade(1, 1200, "201", "1", false), &mut out).unwrap();
    let (h, mut j) = e.join();
    // Header time is the latest asset time (1500); asset 1 ran from 1200.
    assert_eq!(&h[h.len() - 40..h.len() - 32], &1500u64.to_le_bytes());
    assert!(!j.caught_up());
    let mut b = Vec::new();
    e.encode_framed(&trade(0, 1600, "101", "1", false), &mut b)
        .unwrap();
    assert_eq!(j.adapt(&b).unwrap(), None, "asset 0 needs no rewrite");
    let mut b = Vec::new();
    e.encode_framed(&trade(1, 1700, "202", "1", false), &mut b)
        .unwrap();
    let fixed = j.adapt(&b).unwrap().unwrap();
    assert_ne!(fixed, b);
    assert!(j.caught_up());
    let mut d = Decoder::from_header(&h, None).unwrap();
    let got = Frames::new(&fixed).next().unwrap().unwrap();
    assert_eq!(d.decode(got).unwrap().time, 1700);
    assert_eq!(j.adapt(&b).unwrap(), None);
}

#[test]
fn resumes_from_header_plus_last_times() {
    let specs = [spec("BTCUSDT", "100"), spec("ETHUSDT", "200")];
    let mut e = Encoder::new(&specs, 1000).unwrap();
    let mut out = Vec::new();
    e.encode(&trade(0, 1500, "101", "1", false), &mut out).unwrap();
    e.encode(&trade(1, 1200, "201", "1", false), &mut out).unwrap();
    let h = e.header();
    let times: Vec<i64> = e.state().iter().map(|s| s.time).collect();
    let mut d = Decoder::from_header(&h, Some(&times)).unwrap();
    out.clear();
    e.encode(&trade(1, 1300, "200.5", "2", true), &mut out).unwrap();
    let t = d.decode(&out).unwrap();
    assert_eq!((t.time, t.price, t.qty), (1300, 20_050_000, 200_000));
    assert_eq!(
        Decoder::from_header(&h, Some(&[1])).unwrap_err().code(),
        "E_INVALID_ARG"
    );
}

#[test]
fn hostile_input_gives_typed_errors() {
    let e = Encoder::new(&[spec("BTCUSDT", "100")], 1000).unwrap();
    let h = e.header();
    let mut d = Decoder::from_header(&h, None).unwrap();
    let code = |r: Result<Trade, CodecError>| r.unwrap_err().code();
    assert_eq!(code(d.decode(&[])), "E_TRUNCATED");
    assert_eq!(code(d.decode(&[0x00, 0x02])), "E_TRUNCATED");
    assert_eq!(code(d.decode(&[0x05, 0, 0, 0])), "E_UNKNOWN_ASSET");
    assert_eq!(code(d.decode(&[0x00, 0, 0, 0, 0])), "E_TRAILING_BYTES");
    let mut long = vec![0x00];
    long.extend_from_slice(&[0xff; 11]);
    assert_eq!(code(d.decode(&long)), "E_VARINT_TOO_LONG");
    assert_eq!(d.state()[0].time, 1000, "errors leave the state alone");
    for cut in 0..h.len() {
        assert!(Decoder::from_header(&h[..cut], None).is_err());
    }
    let mut lie = h.clone();
    lie[1] = 127;
    assert!(Decoder::from_header(&lie, None).is_err());
    let v2 = crate::wire::v2::Encoder::new(&[spec("BTCUSDT", "100")], 0)
        .unwrap()
        .header();
    assert_eq!(
        Decoder::from_header(&v2, None).unwrap_err().code(),
        "E_WRONG_VERSION"
    );
    let mut nan = h.clone();
    let at = nan.len() - 16;
    nan[at..at + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    assert_eq!(
        Decoder::from_header(&nan, None).unwrap_err().code(),
        "E_BAD_HEADER"
    );
    let mut j = e.join().1;
    let mut bad = Vec::new();
    put_frame(&mut bad, &[0x09, 0, 0, 0]);
    // Nothing pending (no trade yet): the batch is passed through untouched.
    assert_eq!(j.adapt(&bad).unwrap(), None);
}

/// The register-built message (every varint below 2^28) and the general writer must give the
/// bytes the spec defines, on both sides of that limit and of every varint length.
#[test]
fn messages_are_the_spec_bytes_on_both_sides_of_the_short_path_limit() {
    use crate::varint::{put_uvarint, zigzag};
    let specs = [spec("AAA", "10000"), spec("BBB", "10000")];
    let t0 = 1_700_000_000_000i64;
    let mut enc = Encoder::new(&specs, t0).unwrap();
    let lim = 1i64 << 27; // zigzag(±2^27) is 2^28 (or 2^28 - 1): the limit
                          // (asset, time delta, price delta in 1e-5, qty in 1e-5, maker)
    let steps: [(usize, i64, i64, u64, bool); 9] = [
        (0, 0, 0, 1, false),
        (1, 127, 63, 127, true),
        (0, lim - 1, lim - 1, (1 << 28) - 1, true),
        (0, lim, 0, 1 << 28, false),
        (1, 5, -lim, 300, true),
        (1, 5, -lim - 1, 300, false),
        (0, -lim - 1, 10, 1_000_000_000_000, true),
        (1, 1, 1 << 40, 5, false),
        (0, 0, 0, 1 << 21, true),
    ];
    let (mut times, mut prices) = ([t0; 2], [1_000_000_000i64; 2]);
    for (asset, dt, dp, qty, maker) in steps {
        times[asset] += dt;
        prices[asset] += dp;
        let (p, q) = (fixed_string(prices[asset] as u64, 5), fixed_string(qty, 5));
        let t = TradeRef {
            time: times[asset],
            ..trade(asset, 0, &p, &q, maker)
        };
        let mut want = vec![asset as u8 | if maker { 0x80 } else { 0 }];
        put_uvarint(&mut want, zigzag(dt));
        put_uvarint(&mut want, zigzag(dp));
        put_uvarint(&mut want, qty);
        let mut want_framed = Vec::new();
        put_frame(&mut want_framed, &want);

        let mut bare = enc.clone();
        let mut got = vec![0xee];
        bare.encode(&t, &mut got).unwrap();
        assert_eq!(got[1..], want[..], "{asset} {dt} {dp} {qty}");
        let mut got = vec![0xee];
        enc.encode_framed(&t, &mut got).unwrap();
        assert_eq!(got[1..], want_framed[..], "{asset} {dt} {dp} {qty}");
        assert_eq!(bare.state(), enc.state());
    }
}

/// A v1 quantity is at most i64::MAX units (the encoder never writes more); a frame claiming more
/// is refused rather than handed on to be printed as a negative quantity.
#[test]
fn a_quantity_past_i64_is_refused_not_wrapped() {
    let e = Encoder::new(&[spec("BTCUSDT", "100")], 1000).unwrap();
    let mut d = Decoder::from_header(&e.header(), None).unwrap();
    let mut msg = vec![0x00, 0x00, 0x00];
    put_uvarint(&mut msg, i64::MAX as u64);
    assert_eq!(d.decode(&msg).unwrap().qty, i64::MAX as u64);
    for qty in [1u64 << 63, u64::MAX] {
        let mut msg = vec![0x00, 0x00, 0x00];
        put_uvarint(&mut msg, qty);
        assert_eq!(d.decode(&msg).unwrap_err().code(), "E_OVERFLOW", "{qty}");
    }
    assert_eq!(d.state()[0].time, 1000, "errors leave the state alone");
}

/// A v1 header holds one u64 timestamp, and a late joiner's time offsets are differences of asset
/// times: a trade time before the epoch is refused, so every header built stays decodable and
/// every join exact, whatever times the exchange sends.
#[test]
fn trade_times_before_the_epoch_are_refused() {
    let mut e = Encoder::new(&[spec("BTCUSDT", "100"), spec("ETHUSDT", "10")], 0).unwrap();
    let mut out = Vec::new();
    for t in [-1, -5_000, i64::MIN] {
        let err = e.encode(&trade(0, t, "100", "1", false), &mut out).unwrap_err();
        assert_eq!(err.code(), "E_INVALID_ARG", "{t}");
        assert!(err.to_string().contains("BTCUSDT"), "{err}");
    }
    assert!(out.is_empty());
    e.encode(&trade(1, 1_000, "10", "1", false), &mut out).unwrap();
    e.encode(&trade(1, i64::MAX, "10", "1", false), &mut out).unwrap();
    let (h, mut j) = e.join();
    let mut d = Decoder::from_header(&h, None).unwrap();
    let mut next = Vec::new();
    put_frame(&mut next, &{
        let mut m = Vec::new();
        e.encode(&trade(0, 7, "100.5", "2", true), &mut m).unwrap();
        m
    });
    let next = j.adapt(&next).unwrap().unwrap_or(next);
    let got = d.decode(Frames::new(&next).next().unwrap().unwrap()).unwrap();
    assert_eq!((got.time, got.price, got.qty), (7, 10_050_000, 200_000));
}

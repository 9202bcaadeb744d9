//! Fuzz target (proptest, bounded: a few thousand cases, well under a second in release): hostile
//! bytes never panic, never leave a decoder half-updated, and valid streams round-trip. The seeds
//! in tests/fuzz-corpus/ (hex, one input per line: `header|v1|v2|frames <hex>`) are replayed
//! first; failures proptest finds are kept in tests/fuzz.proptest-regressions.
use perp_signal_core::wire::{self, frame::Frames, v1, v2, AssetSpec, TradeRef};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

fn specs(n: usize) -> Vec<AssetSpec> {
    (0..n)
        .map(|i| AssetSpec {
            symbol: format!("S{i}"),
            ref_price: "100.00".into(),
            ref_qty: "1".into(),
            price_scale: Some(2),
            qty_scale: Some(3),
        })
        .collect()
}

fn v1_decoder() -> v1::Decoder {
    let h = v1::Encoder::new(&specs(3), 1_000).map(|e| e.header());
    v1::Decoder::from_header(&h.unwrap_or_default(), None).unwrap_or_else(|e| panic!("{e}"))
}

fn v2_decoder() -> v2::Decoder {
    let h = v2::Encoder::new(&specs(40), 1_000).map(|e| e.header());
    v2::Decoder::from_header(&h.unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"))
}

fn header(b: &[u8]) {
    let _ = wire::detect(b);
    let _ = v1::Decoder::from_header(b, None);
    let _ = v2::Decoder::from_header(b);
}

fn payload_v1(d: &mut v1::Decoder, b: &[u8]) {
    let before = d.state().to_vec();
    if d.decode(b).is_err() {
        assert_eq!(d.state(), &before[..], "a failed decode changed the state");
    }
}

fn payload_v2(d: &mut v2::Decoder, b: &[u8]) {
    let before = d.state().clone();
    if d.decode(b).is_err() {
        assert_eq!(d.state(), &before, "a failed decode changed the state");
    }
}

fn frames(b: &[u8]) {
    for p in Frames::new(b).flatten() {
        assert!(p.len() <= b.len());
    }
    // A joiner with work to do: assets 1 and 2 last traded before the header's timestamp, so
    // their first messages are parsed and rewritten (a fresh encoder's joiner has nothing
    // pending and returns before reading a byte).
    let mut e = v1::Encoder::new(&specs(3), 0).unwrap_or_else(|e| panic!("{e}"));
    let t = TradeRef {
        asset: 0,
        time: 5_000,
        trade_id: 1,
        price: b"100.5",
        qty: b"1",
        maker: false,
        kind: b"MARKET",
    };
    e.encode(&t, &mut Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    let mut j = e.join().1;
    assert!(!j.caught_up(), "the joiner must have frames to rewrite");
    if let Ok(Some(out)) = j.adapt(b) {
        // What it rewrote is still a valid framed batch.
        assert!(Frames::new(&out).all(|f| f.is_ok()));
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

#[test]
fn corpus_seeds_replay() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz-corpus");
    let mut n = 0;
    let (mut d1, mut d2) = (v1_decoder(), v2_decoder());
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let (kind, h) = line.split_once(' ').unwrap_or((line, ""));
            let b = hex(h.trim());
            match kind {
                "header" => header(&b),
                "v1" => payload_v1(&mut d1, &b),
                "v2" => payload_v2(&mut d2, &b),
                "frames" => frames(&b),
                k => panic!("{}: unknown seed kind {k}", path.display()),
            }
            n += 1;
        }
    }
    assert!(n >= 20, "only {n} seeds");
}

fn config() -> Config {
    Config {
        cases: 2_000,
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

/// Bytes shaped like frames: a tag from the interesting set, then random bytes.
fn frame_like() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![0x00u8, 0x01, 0x02, 0x03, 0x04, 0x80, 0x9f, 0xa0, 0xc1, 0xff]),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(t, mut rest)| {
            rest.insert(0, t);
            rest
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_headers_never_panic(b in prop::collection::vec(any::<u8>(), 0..200)) {
        header(&b);
    }

    #[test]
    fn mutated_headers_never_panic(pos in 0usize..400, val in any::<u8>(), cut in 0usize..400) {
        for mut h in [
            v1::Encoder::new(&specs(3), 1).map(|e| e.header()).unwrap_or_default(),
            v2::Encoder::new(&specs(3), 1).map(|e| e.header()).unwrap_or_default(),
        ] {
            let n = h.len();
            h[pos % n] = val;
            h.truncate(cut.max(1) % (n + 1));
            header(&h);
        }
    }

    #[test]
    fn arbitrary_payloads_never_panic(frames_in in prop::collection::vec(frame_like(), 1..20)) {
        let (mut d1, mut d2) = (v1_decoder(), v2_decoder());
        for f in &frames_in {
            payload_v1(&mut d1, f);
            payload_v2(&mut d2, f);
        }
        let mut joined = Vec::new();
        for f in &frames_in {
            joined.extend_from_slice(&(f.len() as u32).to_le_bytes());
            joined.extend_from_slice(f);
        }
        frames(&joined);
        frames(&frames_in.concat());
    }

    #[test]
    fn v2_round_trips_any_valid_stream(
        trades in prop::collection::vec(
            (0usize..40, 0i64..100_000, 1u64..3, 1u64..10_000_000, 0u8..4, 1u64..1_000_000, any::<bool>(), 0usize..3),
            1..60,
        )
    ) {
        let mut e = v2::Encoder::new(&specs(40), 0).unwrap_or_else(|e| panic!("{e}"));
        let mut d = v2::Decoder::from_header(&e.header()).unwrap_or_else(|e| panic!("{e}"));
        let mut id = 0u64;
        let mut t = 0i64;
        for (asset, dt, step, p, scale, q, maker, kind) in trades {
            id += step;
            t += dt;
            let price = perp_signal_core::decimal::fixed_string(p, scale);
            let qty = perp_signal_core::decimal::fixed_string(q, 3);
            let kind = ["MARKET", "ADL", "FOO_BAR"][kind];
            let tr = TradeRef { asset, time: t, trade_id: id, price: price.as_bytes(), qty: qty.as_bytes(), maker, kind: kind.as_bytes() };
            let mut out = Vec::new();
            e.encode(&tr, &mut out).unwrap_or_else(|e| panic!("{e}"));
            let r = d.decode(&out).unwrap_or_else(|e| panic!("{e}"));
            let Some(v2::Message::Trade(got)) = r.message else { panic!("no trade") };
            prop_assert_eq!(got.time, t);
            prop_assert_eq!(got.trade_id, id);
            prop_assert_eq!(got.kind, kind.as_bytes());
            let want = perp_signal_core::decimal::to_scaled(price.as_bytes(), got.price_scale).ok().flatten();
            prop_assert_eq!(Some(got.price as u64), want);
        }
        prop_assert_eq!(e.state(), d.state());
    }
}

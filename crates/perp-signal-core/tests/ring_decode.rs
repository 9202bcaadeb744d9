//! The Rust consumer path end to end: a producer encodes wire v1 and v2 trades into the ring and
//! keeps the header copy current on request; a consumer pauses, is overrun, resyncs from the
//! header copy and then decodes every later trade exactly.
use perp_signal_core::ring::{Consumer, HeaderSnapshot, Pop, Producer, ProducerOptions, StartAt};
use perp_signal_core::wire::{v1, v2, AssetSpec, TradeRef};

struct Name(String);
impl Drop for Name {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/dev/shm/{}", self.0));
    }
}

/// Trade `i`: two assets, prices in cents walking up and down, exact at 2 decimals.
fn trade(i: u64) -> (usize, i64, String, String, bool) {
    let asset = (i % 2) as usize;
    let cents = 6_180_030 + ((i * 7919) % 200) as i64 - 100 + asset as i64 * 100_000;
    let price = format!("{}.{:02}", cents / 100, cents % 100);
    let qty = format!("0.{:03}", 1 + i % 997);
    (
        asset,
        1_723_161_256_322 + i as i64,
        price,
        qty,
        i.is_multiple_of(3),
    )
}

fn assets() -> Vec<AssetSpec> {
    ["BTCUSDT", "ETHUSDT"]
        .iter()
        .map(|s| AssetSpec {
            symbol: (*s).into(),
            ref_price: "61800.30".into(),
            ref_qty: "0.006".into(),
            price_scale: Some(2),
            qty_scale: Some(3),
        })
        .collect()
}

enum Enc {
    V1(v1::Encoder),
    V2(v2::Encoder),
}

impl Enc {
    fn encode(&mut self, i: u64, out: &mut Vec<u8>) {
        let (asset, time, price, qty, maker) = trade(i);
        let t = TradeRef {
            asset,
            time,
            trade_id: 1000 + i,
            price: price.as_bytes(),
            qty: qty.as_bytes(),
            maker,
            kind: b"MARKET",
        };
        match self {
            Enc::V1(e) => e.encode(&t, out).expect("encode v1"),
            Enc::V2(e) => e.encode(&t, out).expect("encode v2"),
        }
    }
    /// Header and resume state as the shm publisher stores them (docs/shm-layout.md).
    fn header_copy(&self) -> (Vec<u8>, Vec<u8>) {
        match self {
            Enc::V1(e) => {
                let state = e
                    .state()
                    .iter()
                    .flat_map(|s| (s.time as f64).to_le_bytes())
                    .collect();
                (e.header(), state)
            }
            Enc::V2(e) => (e.header(), Vec::new()),
        }
    }
}

enum Dec {
    V1(v1::Decoder),
    V2(v2::Decoder),
}

impl Dec {
    fn from(h: &HeaderSnapshot, v1_wire: bool) -> Dec {
        if v1_wire {
            let times: Vec<i64> = h
                .state
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as i64)
                .collect();
            Dec::V1(v1::Decoder::from_header(&h.header, Some(&times)).expect("v1 header"))
        } else {
            Dec::V2(v2::Decoder::from_header(&h.header).expect("v2 header"))
        }
    }
    /// Checks the decoded record against trade `i`.
    fn check(&mut self, payload: &[u8], i: u64) {
        let (asset, time, price, qty, maker) = trade(i);
        let cents: i64 = price.replace('.', "").parse().expect("price");
        let mills: u64 = qty.replace('.', "").parse().expect("qty");
        match self {
            Dec::V1(d) => {
                let t = d.decode(payload).expect("decode v1");
                assert_eq!(
                    (t.asset, t.time, t.price, t.qty, t.maker),
                    (asset, time, cents * 1000, mills * 100, maker),
                    "v1 trade {i}"
                );
            }
            Dec::V2(d) => {
                let got = d.decode(payload).expect("decode v2");
                let Some(v2::Message::Trade(t)) = got.message else {
                    panic!("v2 message {i} is not a trade: {got:?}");
                };
                assert_eq!(
                    (t.asset, t.time, t.price, t.qty, t.maker, t.trade_id),
                    (asset, time, cents, mills, maker, 1000 + i),
                    "v2 trade {i}"
                );
            }
        }
    }
}

fn overrun_then_exact(v1_wire: bool) {
    let name = Name(format!("ps-test-{}-decode-{v1_wire}", std::process::id()));
    let mut enc = if v1_wire {
        Enc::V1(v1::Encoder::new(&assets(), 1_723_161_256_000).expect("v1 encoder"))
    } else {
        Enc::V2(v2::Encoder::new(&assets(), 1_723_161_256_000).expect("v2 encoder"))
    };
    let mut p = Producer::create(&name.0, 8192, ProducerOptions::default()).expect("producer");
    let (h, s) = enc.header_copy();
    p.set_header(&h, &s).expect("header");
    let mut c = Consumer::open(&name.0, StartAt::Oldest).expect("consumer");
    let mut next = 0u64;
    let mut publish = |p: &mut Producer, enc: &mut Enc, n: u64| {
        for _ in 0..n {
            let mut out = Vec::new();
            enc.encode(next, &mut out);
            p.push(&out).expect("push");
            next += 1;
        }
        if p.header_wanted() {
            let (h, s) = enc.header_copy();
            p.set_header(&h, &s).expect("header");
        }
    };
    let mut buf = [0u8; 256];
    let mut dec = Dec::from(&c.header().expect("header copy"), v1_wire);
    assert!(c.resync(&c.header().expect("header copy")));
    publish(&mut p, &mut enc, 100);
    for i in 0..100 {
        let Pop::Record { len, seq } = c.pop_into(&mut buf).expect("pop") else {
            panic!("record {i} missing");
        };
        assert_eq!(seq, i);
        dec.check(&buf[..len], seq);
    }
    // Paused: 3000 trades into an 8 KiB ring.
    publish(&mut p, &mut enc, 3000);
    assert!(p.stats().dropped > 0);
    let mut decoded_after = 0;
    let mut resynced = false;
    let mut lost = 0;
    for _ in 0..100_000 {
        if decoded_after == 1000 {
            break;
        }
        match c.pop_into(&mut buf).expect("pop") {
            Pop::Record { len, seq } => {
                dec.check(&buf[..len], seq);
                if resynced {
                    decoded_after += 1;
                }
            }
            Pop::Lost { count } => {
                lost += count;
                c.request_header();
                // The producer answers at its next publish.
                publish(&mut p, &mut enc, 10);
                let snap = c.header().expect("fresh header copy");
                assert!(c.resync(&snap), "the fresh copy is ahead of us");
                dec = Dec::from(&snap, v1_wire);
                resynced = true;
            }
            Pop::Empty => publish(&mut p, &mut enc, 10),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(resynced);
    assert_eq!(lost, p.stats().dropped);
    assert_eq!(decoded_after, 1000);
}

#[test]
fn v1_consumer_resyncs_after_overrun_and_decodes_exactly() {
    overrun_then_exact(true);
}

#[test]
fn v2_consumer_resyncs_after_overrun_and_decodes_exactly() {
    overrun_then_exact(false);
}

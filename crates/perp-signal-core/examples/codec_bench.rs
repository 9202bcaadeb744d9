//! Rust core codec throughput on one core: `cargo run --release -p perp-signal-core --example
//! codec_bench [trades]`. Prints trades/s for v1 and v2 encode (from the exchange's decimal
//! strings) and decode, on a synthetic BTC/ETH/SOL stream; CPU time is the mean of 9 passes. `PARSE_ONLY=1` also
//! times the exact decimal parse of price and quantity alone; `ONLY=v1` or `ONLY=v2` runs one
//! version, `ONLY=v1-encode` only its encode, `ONLY=input` nothing but the input (for profilers: one
//! loop to look at, and what to subtract).
use perp_signal_core::decimal::fixed_string;
use perp_signal_core::wire::{frame::Frames, v1, v2, AssetSpec, TradeRef};
use std::time::Instant;

struct Owned {
    asset: usize,
    time: i64,
    id: u64,
    price: String,
    qty: String,
    maker: bool,
}

fn stream(n: usize) -> Vec<Owned> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut r = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    // BTC tick 0.10 (price x100, steps of 10), ETH tick 0.01, SOL tick 0.01; qty decimals 3, 3, 0.
    let mut ticks = [6_000_000i64, 260_000, 15_000];
    let step = [10i64, 1, 1];
    let qdec = [3u8, 3, 0];
    let mut ids = [5_266_583_935u64, 4_100_000_000, 1_500_000_000];
    let mut t = 1_723_161_256_322i64;
    (0..n)
        .map(|_| {
            let u = r() % 100;
            let a = if u < 50 {
                0
            } else if u < 85 {
                1
            } else {
                2
            };
            let g = r() % 100;
            t += if g < 55 {
                0
            } else if g < 90 {
                (r() % 20) as i64
            } else {
                (r() % 400) as i64
            };
            let m = r() % 100;
            ticks[a] += if m < 60 {
                0
            } else if m < 95 {
                if r() % 2 == 0 {
                    -1
                } else {
                    1
                }
            } else {
                (r() % 21) as i64 - 10
            };
            ids[a] += 1;
            Owned {
                asset: a,
                time: t,
                id: ids[a],
                price: fixed_string((ticks[a] * step[a]) as u64, 2),
                qty: fixed_string(1 + r() % 2000, qdec[a]),
                maker: r() % 2 == 0,
            }
        })
        .collect()
}

fn assets() -> Vec<AssetSpec> {
    [
        ("BTCUSDT", "60000.00", "0.010", 3),
        ("ETHUSDT", "2600.00", "0.100", 3),
        ("SOLUSDT", "150.00", "5", 0),
    ]
    .iter()
    .map(|&(s, p, q, qs)| AssetSpec {
        symbol: s.into(),
        ref_price: p.into(),
        ref_qty: q.into(),
        price_scale: Some(2),
        qty_scale: Some(qs),
    })
    .collect()
}

/// CPU time this thread has run, from the scheduler (ns): on a shared machine wall time also
/// counts the time other processes held the core.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Timed passes over the whole stream after one untimed warm-up pass.
const PASSES: u32 = 9;

/// (best wall seconds of a pass, mean CPU seconds of a pass, result). The kernel advances a
/// running thread's schedstat only at scheduler ticks (every 4 ms here), so the CPU time of
/// one ~40 ms pass is off by up to 10 %, and the best of several passes picks the under-counted
/// ones: the CPU time is read once around all passes and averaged instead.
fn measure<F: FnMut() -> usize>(mut f: F) -> (f64, f64, usize) {
    let mut out = std::hint::black_box(f());
    let mut wall = f64::INFINITY;
    let c = cpu_ns();
    for _ in 0..PASSES {
        let t = Instant::now();
        out = std::hint::black_box(f());
        wall = wall.min(t.elapsed().as_secs_f64());
    }
    let cpu = match (c, cpu_ns()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1e9 / f64::from(PASSES),
        _ => f64::NAN,
    };
    (wall, cpu, out)
}

/// One trade as a caller holds it just before encoding: numbers, and where its strings lie in
/// one shared text buffer, as the binding's packed batch (and a received JSON frame) hands them
/// over. The `TradeRef` is built per trade inside the timed loop, as the binding does; a
/// prebuilt array of 80-byte `TradeRef`s would make the benchmark stream 160 MB from memory and
/// measure memory bandwidth instead of the codec.
struct Packed {
    time: i64,
    id: u64,
    price_at: u32,
    qty_at: u32,
    qty_end: u32,
    asset: u8,
    maker: bool,
}

impl Packed {
    #[inline(always)]
    fn trade<'a>(&self, text: &'a [u8]) -> TradeRef<'a> {
        TradeRef {
            asset: usize::from(self.asset),
            time: self.time,
            trade_id: self.id,
            price: &text[self.price_at as usize..self.qty_at as usize],
            qty: &text[self.qty_at as usize..self.qty_end as usize],
            maker: self.maker,
            kind: b"MARKET",
        }
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let trades = stream(n);
    let mut text = Vec::with_capacity(n * 16);
    let mut packed = Vec::with_capacity(n);
    for o in &trades {
        let price_at = text.len() as u32;
        text.extend_from_slice(o.price.as_bytes());
        let qty_at = text.len() as u32;
        text.extend_from_slice(o.qty.as_bytes());
        packed.push(Packed {
            time: o.time,
            id: o.id,
            price_at,
            qty_at,
            qty_end: text.len() as u32,
            asset: o.asset as u8,
            maker: o.maker,
        });
    }
    drop(trades);
    let text = &text[..];
    let specs = assets();
    if std::env::var("PARSE_ONLY").is_ok() {
        let (_, c, k) = measure(|| {
            let mut k = 0usize;
            for r in packed.iter().map(|p| p.trade(text)) {
                let p = perp_signal_core::decimal::parse(r.price).expect("p");
                let q = perp_signal_core::decimal::parse(r.qty).expect("q");
                k = k.wrapping_add(p.digits as usize ^ q.digits as usize);
            }
            k
        });
        println!("parse only: {:.1} ns/trade CPU ({k})", c * 1e9 / n as f64);
    }
    let only = std::env::var("ONLY").unwrap_or_default();
    if only == "input" {
        // The cost of building the input alone, to subtract from a profiler's count.
        println!("{} trades", std::hint::black_box(&packed).len());
        return;
    }
    let mut buf = Vec::with_capacity(n * 12);
    println!(
        "rust core codec, {n} synthetic BTC/ETH/SOL trades, one core; CPU time: mean of {PASSES} passes, wall: best pass"
    );
    macro_rules! run {
        ($name:literal, $enc:expr, $dec:expr) => {{
            let (t, c, bytes) = measure(|| {
                buf.clear();
                let mut e = $enc;
                for p in &packed {
                    e.encode_framed(&p.trade(text), &mut buf).expect("encode");
                }
                buf.len()
            });
            println!(
                "{} encode (decimal strings -> framed bytes): {:>6.1} M trades/s wall, {:>6.1} M/s CPU time ({:.1} ns/trade CPU), {:.3} payload bytes/trade",
                $name,
                n as f64 / t / 1e6,
                n as f64 / c / 1e6,
                c * 1e9 / n as f64,
                (bytes - 4 * n) as f64 / n as f64
            );
            if !only.ends_with("-encode") {
            let (t, c, count) = measure(|| {
                let mut d = $dec;
                let mut k = 0usize;
                for f in Frames::new(&buf) {
                    let f = f.expect("frame");
                    std::hint::black_box(d.decode(f).expect("decode"));
                    k += 1;
                }
                k
            });
            assert_eq!(count, n);
            println!(
                "{} decode (framed bytes -> integer trades):  {:>6.1} M trades/s wall, {:>6.1} M/s CPU time ({:.1} ns/trade CPU)",
                $name,
                n as f64 / t / 1e6,
                n as f64 / c / 1e6,
                c * 1e9 / n as f64
            );
            }
        }};
    }
    let h1 = v1::Encoder::new(&specs, 1_723_161_256_322).expect("v1").header();
    if !only.starts_with("v2") {
        run!(
            "v1",
            v1::Encoder::new(&specs, 1_723_161_256_322).expect("v1"),
            v1::Decoder::from_header(&h1, None).expect("h1")
        );
    }
    let h2 = v2::Encoder::new(&specs, 1_723_161_256_322).expect("v2").header();
    if !only.starts_with("v1") {
        run!(
            "v2",
            v2::Encoder::new(&specs, 1_723_161_256_322).expect("v2"),
            v2::Decoder::from_header(&h2).expect("h2")
        );
    }
}

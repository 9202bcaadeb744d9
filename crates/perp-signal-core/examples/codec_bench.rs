//! Rust core codec throughput on one core: `cargo run --release -p perp-signal-core --example
//! codec_bench [trades]`. Prints trades/s for v1 and v2 encode (from the exchange's decimal
//! strings) and decode, on a synthetic BTC/ETH/SOL stream; best of 5 runs. `PARSE_ONLY=1` also
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

/// Best of 5: (wall seconds, CPU seconds, result).
fn best<F: FnMut() -> usize>(mut f: F) -> (f64, f64, usize) {
    let (mut wall, mut cpu) = (f64::INFINITY, f64::INFINITY);
    let mut out = 0;
    for _ in 0..5 {
        let c = cpu_ns();
        let t = Instant::now();
        out = std::hint::black_box(f());
        wall = wall.min(t.elapsed().as_secs_f64());
        if let (Some(a), Some(b)) = (c, cpu_ns()) {
            cpu = cpu.min((b - a) as f64 / 1e9);
        }
    }
    (wall, cpu, out)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let trades = stream(n);
    // The strings live back to back in one buffer, as the binding's packed batch hands them over
    // (and as a received JSON frame holds them), not in 2 scattered heap allocations per trade.
    let mut text = Vec::with_capacity(n * 16);
    let mut spans = Vec::with_capacity(n);
    for o in &trades {
        let p = text.len();
        text.extend_from_slice(o.price.as_bytes());
        let q = text.len();
        text.extend_from_slice(o.qty.as_bytes());
        spans.push((p, q, text.len()));
    }
    let refs: Vec<TradeRef> = trades
        .iter()
        .zip(&spans)
        .map(|(o, &(p, q, e))| TradeRef {
            asset: o.asset,
            time: o.time,
            trade_id: o.id,
            price: &text[p..q],
            qty: &text[q..e],
            maker: o.maker,
            kind: b"MARKET",
        })
        .collect();
    let specs = assets();
    if std::env::var("PARSE_ONLY").is_ok() {
        let (_, c, k) = best(|| {
            let mut k = 0usize;
            for r in &refs {
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
        println!("{} frames", std::hint::black_box(&refs).len());
        return;
    }
    let mut buf = Vec::with_capacity(n * 12);
    println!("rust core codec, {n} synthetic BTC/ETH/SOL trades, one core, best of 5");
    macro_rules! run {
        ($name:literal, $enc:expr, $dec:expr) => {{
            let (t, c, bytes) = best(|| {
                buf.clear();
                let mut e = $enc;
                for r in &refs {
                    e.encode_framed(r, &mut buf).expect("encode");
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
            let (t, c, count) = best(|| {
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

//! Rust consumer of a perp-signal /dev/shm ring (the original's shm-q-cb): attaches by name,
//! decodes wire v1 or v2 from the producer's header copy and prints one line per trade. After a
//! loss (ring full) or a producer restart it asks for a fresh header copy and resyncs, so every
//! trade it prints is exact.
//!
//!   cargo run --release --example shm_consumer -- NAME [COUNT]
use std::time::{Duration, Instant};

use perp_signal_core::decimal::write_fixed_signed;
use perp_signal_core::ring::{Consumer, HeaderSnapshot, Pop, StartAt};
use perp_signal_core::wire::{self, v1, v2, Wire};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

enum Dec {
    V1(v1::Decoder),
    V2(v2::Decoder),
}

fn decimal(v: i64, scale: u8) -> String {
    let mut out = Vec::new();
    write_fixed_signed(&mut out, v, scale);
    String::from_utf8_lossy(&out).into_owned()
}

fn decoder(h: &HeaderSnapshot) -> Res<Dec> {
    Ok(match wire::detect(&h.header)? {
        Wire::V1 => {
            // Resume state: each asset's last trade time, N x f64 LE (docs/shm-layout.md).
            let times: Vec<i64> = h
                .state
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as i64)
                .collect();
            let times = (!times.is_empty()).then_some(&times[..]);
            Dec::V1(v1::Decoder::from_header(&h.header, times)?)
        }
        Wire::V2 => Dec::V2(v2::Decoder::from_header(&h.header)?),
    })
}

/// Prints the trade in `payload`; false if it was not one (heartbeat, gap notice...).
fn print(dec: &mut Dec, payload: &[u8]) -> Res<bool> {
    match dec {
        Dec::V1(d) => {
            let t = d.decode(payload)?;
            let sym = d.symbols().get(t.asset).cloned().unwrap_or_default();
            println!(
                "{sym} time={} price={} qty={} maker={}",
                t.time,
                decimal(t.price, 5),
                decimal(t.qty as i64, 5),
                t.maker
            );
            Ok(true)
        }
        Dec::V2(d) => {
            let got = d.decode(payload)?;
            if let Some(loss) = got.stream_loss.or(got.asset_loss) {
                eprintln!("stream reports {} missing frames", loss.missing);
            }
            let Some(v2::Message::Trade(t)) = got.message else {
                return Ok(false);
            };
            // The trade borrows the decoder; keep the line, then look the symbol up.
            let line = format!(
                "id={} time={} price={} qty={} maker={}",
                t.trade_id,
                t.time,
                decimal(t.price, t.price_scale),
                decimal(t.qty as i64, t.qty_scale),
                t.maker
            );
            let asset = t.asset;
            let sym = d
                .state()
                .assets
                .get(asset)
                .map(|a| a.symbol.clone())
                .unwrap_or_default();
            println!("{sym} {line}");
            Ok(true)
        }
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().ok_or("usage: shm_consumer NAME [COUNT]")?;
    let count: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(0);
    let mut c = Consumer::open(name, StartAt::Latest)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut dec: Option<Dec> = None;
    let mut trades = 0u64;
    let mut idle = 0u32;
    let mut asked = Instant::now() - Duration::from_secs(1);
    while count == 0 || trades < count {
        if dec.is_none() && !c.epoch_changed() {
            if let Some(h) = c.header().filter(|h| c.resync(h)) {
                eprintln!("decoding from message {}", h.seq);
                dec = Some(decoder(&h)?);
                continue;
            }
            if asked.elapsed() > Duration::from_millis(100) {
                c.request_header();
                asked = Instant::now();
            }
            std::thread::sleep(Duration::from_micros(100));
            continue;
        }
        match c.pop_into(&mut buf)? {
            Pop::Record { len, .. } => {
                idle = 0;
                if let Some(d) = dec.as_mut() {
                    match print(d, &buf[..len]) {
                        Ok(true) => trades += 1,
                        Ok(false) => {}
                        Err(e) => {
                            eprintln!("undecodable record ({e}); resyncing");
                            dec = None;
                        }
                    }
                }
            }
            Pop::Lost { count } => {
                eprintln!("lost {count} messages (ring full); resyncing");
                dec = None;
                asked = Instant::now() - Duration::from_secs(1);
            }
            Pop::Epoch { epoch } => {
                eprintln!("producer restarted (epoch {epoch:#x}); resyncing");
                dec = None;
            }
            Pop::Closed => {
                eprintln!("producer shut down");
                break;
            }
            Pop::Empty => {
                idle = idle.saturating_add(1);
                if idle < 10_000 {
                    std::hint::spin_loop();
                } else {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
    Ok(())
}

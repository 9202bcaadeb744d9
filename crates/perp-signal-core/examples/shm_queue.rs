//! Plain string producer and consumer over the /dev/shm ring (the original's shm-queue example).
//!
//!   cargo run --release --example shm_queue -- produce NAME [COUNT [INTERVAL_MS]]
//!   cargo run --release --example shm_queue -- consume NAME [COUNT]
//!
//! The consumer prints each message on its own line, says when messages were lost or the
//! producer restarted, and exits after COUNT messages (0: until the producer shuts down).
use std::time::Duration;

use perp_signal_core::ring::{Consumer, Pop, Producer, ProducerOptions, Push, StartAt};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn produce(name: &str, count: u64, interval: Duration) -> Res<()> {
    let mut p = Producer::create(name, 1 << 16, ProducerOptions::default())?;
    for i in 0..count {
        let msg = format!("message {i}");
        if p.push(msg.as_bytes())? == Push::Dropped {
            eprintln!("queue full: dropped {msg:?}");
        }
        std::thread::sleep(interval);
    }
    let s = p.stats();
    eprintln!("pushed {} dropped {}", s.pushed, s.dropped);
    Ok(())
}

fn consume(name: &str, count: u64) -> Res<()> {
    let mut c = Consumer::open(name, StartAt::Oldest)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0u64;
    let mut idle = 0u32;
    while count == 0 || got < count {
        match c.pop_into(&mut buf)? {
            Pop::Record { len, .. } => {
                idle = 0;
                got += 1;
                println!("{}", String::from_utf8_lossy(&buf[..len]));
            }
            Pop::Lost { count } => eprintln!("lost {count} messages"),
            Pop::Epoch { epoch } => eprintln!("producer restarted (epoch {epoch:#x})"),
            Pop::Closed => break,
            // Spin briefly, then yield, then sleep: latency when busy, no burnt core when idle.
            Pop::Empty => {
                idle = idle.saturating_add(1);
                if idle < 10_000 {
                    std::hint::spin_loop();
                } else if idle < 11_000 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: u64| -> Res<u64> { Ok(args.get(i).map(|s| s.parse()).transpose()?.unwrap_or(d)) };
    match (args.first().map(String::as_str), args.get(1)) {
        (Some("produce"), Some(name)) => produce(name, num(2, 10)?, Duration::from_millis(num(3, 100)?)),
        (Some("consume"), Some(name)) => consume(name, num(2, 0)?),
        _ => Err("usage: shm_queue produce NAME [COUNT [INTERVAL_MS]] | consume NAME [COUNT]".into()),
    }
}

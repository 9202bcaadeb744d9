//! Cross-process benchmark of the /dev/shm ring, driven by bench/shm.js (`npm run bench:shm`).
//!
//! Roles (the driver spawns this binary once per process):
//!   floor ROUNDS                     cache-line ping-pong between two processes (spawns `pong`)
//!   latency N PAUSE_NS               one-in-flight push -> spinning Rust consumer (spawns `consume`)
//!   throughput N                     push as fast as the consumer keeps up (spawns `drain`)
//!   produce NAME N PAUSE_NS          one-in-flight producer for an external (Node) consumer
//!   flood NAME N                     as-fast-as-taken producer for an external (Node) consumer
//! Each prints one JSON line with its figures (latencies in ns). PERP_SIGNAL_BENCH_CPU=N pins the
//! process to CPU N (the driver pins producers to 0 and consumers to 1).
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use perp_signal_core::ring::{
    monotonic_ns, pin_to_cpu, Consumer, Pop, Producer, ProducerOptions, SharedPage, StartAt,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const CAPACITY: u64 = 1 << 20;
const DEADLINE: Duration = Duration::from_secs(60);

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Res<T> {
    args.get(i)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("missing or bad {what} (argument {i})").into())
}

fn percentiles(mut v: Vec<u64>) -> String {
    if v.is_empty() {
        return "\"count\":0".into();
    }
    v.sort_unstable();
    let p = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    format!(
        "\"count\":{},\"p50\":{},\"p99\":{},\"p999\":{},\"max\":{}",
        v.len(),
        p(0.5),
        p(0.99),
        p(0.999),
        v[v.len() - 1]
    )
}

/// Children (the consuming side) run on the CPU after ours.
fn spawn_self(args: &[&str]) -> Res<std::process::Child> {
    let mut cmd = Command::new(std::env::current_exe()?);
    if let Some(cpu) = bench_cpu() {
        cmd.env("PERP_SIGNAL_BENCH_CPU", (cpu + 1).to_string());
    }
    Ok(cmd.args(args).stdout(Stdio::piped()).spawn()?)
}

fn child_output(child: std::process::Child) -> Res<String> {
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!("child failed: {}", out.status).into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Polls `cond` until it holds. The deadline is checked only every 1024 polls: a clock read per
/// poll would make each poll ~20 ns slower to notice a change, on the floor and the ring alike.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) -> Res<()> {
    let start = Instant::now();
    let mut polls = 0u32;
    while !cond() {
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(1024) && start.elapsed() > DEADLINE {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::hint::spin_loop();
    }
    Ok(())
}

/// A loop guard that reads the clock once per 1024 turns.
struct Deadline {
    start: Instant,
    turns: u32,
}

impl Deadline {
    fn new() -> Self {
        Deadline {
            start: Instant::now(),
            turns: 0,
        }
    }

    #[inline]
    fn passed(&mut self) -> bool {
        self.turns = self.turns.wrapping_add(1);
        self.turns.is_multiple_of(1024) && self.start.elapsed() > DEADLINE
    }
}

fn floor(rounds: u64) -> Res<()> {
    let name = format!("ps-bench-floor-{}", std::process::id());
    let page = SharedPage::create(&name)?;
    let child = spawn_self(&["pong", &name, &rounds.to_string()])?;
    let (ping, pong, ready) = (page.word(0), page.word(1), page.word(2));
    wait_until("pong to start", || {
        ready.load(std::sync::atomic::Ordering::Acquire) == 1
    })?;
    let mut half_rtt = Vec::with_capacity(rounds as usize);
    for i in 1..=rounds {
        // The ping carries its send time, as a ring record carries its push time: pong takes
        // its clock on arrival, exactly as the ring consumer does after a pop.
        let t0 = monotonic_ns();
        ping.store(t0, std::sync::atomic::Ordering::Release);
        wait_until("pong", || pong.load(std::sync::atomic::Ordering::Acquire) == i)?;
        half_rtt.push((monotonic_ns() - t0) / 2);
    }
    let one_way = child_output(child)?;
    println!(
        "{{\"test\":\"floor\",{},\"half_rtt\":{{{}}}}}",
        one_way.trim_start_matches('{').trim_end_matches('}'),
        percentiles(half_rtt)
    );
    Ok(())
}

fn pong(name: &str, rounds: u64) -> Res<()> {
    use std::sync::atomic::Ordering;
    let page = SharedPage::open(name)?;
    let (ping, pong) = (page.word(0), page.word(1));
    page.word(2).store(1, Ordering::Release);
    let mut one_way = Vec::with_capacity(rounds as usize);
    let mut last = 0;
    for i in 1..=rounds {
        let mut t0 = 0;
        wait_until("ping", || {
            t0 = ping.load(Ordering::Acquire);
            t0 != last
        })?;
        // Answer first, so the round trip holds no more than the two crossings.
        pong.store(i, Ordering::Release);
        one_way.push(monotonic_ns().saturating_sub(t0));
        last = t0;
    }
    println!("{{{}}}", percentiles(one_way));
    Ok(())
}

/// Message `i`: 16 to 64 bytes, the push time in the first 8.
fn stamp(buf: &mut [u8; 64], i: u64) -> usize {
    buf[..8].copy_from_slice(&monotonic_ns().to_le_bytes());
    16 + (i % 49) as usize
}

/// One message in flight at a time: wait until the consumer took the last one, let a short
/// varying pause pass (so the two processes do not fall into lockstep), then push. Each sample is
/// then one hand-off, not time spent queueing behind earlier messages.
fn paced_producer(name: &str, n: u64, pause_ns: u64) -> Res<Producer> {
    let mut p = Producer::create(name, CAPACITY, ProducerOptions::default())?;
    wait_until("the consumer to attach", || p.consumer_pid() != 0)?;
    std::thread::sleep(Duration::from_millis(50));
    let mut buf = [0u8; 64];
    let mut rnd = 0x9e37_79b9_u64;
    for i in 0..n {
        wait_until("the consumer to catch up", || p.backlog() == 0)?;
        rnd ^= rnd << 13;
        rnd ^= rnd >> 7;
        rnd ^= rnd << 17;
        let until = monotonic_ns() + pause_ns / 2 + rnd % pause_ns.max(1);
        while monotonic_ns() < until {
            std::hint::spin_loop();
        }
        buf[8..16].copy_from_slice(&i.to_le_bytes());
        let len = stamp(&mut buf, i);
        p.push(&buf[..len])?;
    }
    Ok(p)
}

fn latency(n: u64, interval_ns: u64) -> Res<()> {
    let name = format!("ps-bench-lat-{}", std::process::id());
    let child = spawn_self(&["consume", &name, &n.to_string()]);
    // The consumer retries opening until we created the ring.
    let p = paced_producer(&name, n, interval_ns)?;
    let out = child_output(child?)?;
    println!(
        "{{\"test\":\"rust-rust\",\"dropped\":{},{}",
        p.stats().dropped,
        out.trim_start_matches('{')
    );
    Ok(())
}

fn open_retry(name: &str) -> Res<Consumer> {
    let start = Instant::now();
    loop {
        match Consumer::open(name, StartAt::Oldest) {
            Ok(c) => return Ok(c),
            Err(e) if start.elapsed() > DEADLINE => return Err(e.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn consume(name: &str, n: u64) -> Res<()> {
    let mut c = open_retry(name)?;
    let mut lat = Vec::with_capacity(n as usize);
    let mut lost = 0u64;
    let mut buf = [0u8; 64];
    let mut deadline = Deadline::new();
    while (lat.len() as u64) + lost < n && !deadline.passed() {
        match c.pop_into(&mut buf)? {
            Pop::Record { .. } => {
                let t1 = monotonic_ns();
                let t0 = u64::from_le_bytes(buf[..8].try_into()?);
                lat.push(t1.saturating_sub(t0));
            }
            Pop::Lost { count } => lost += count,
            _ => {}
        }
    }
    println!("{{\"lost\":{lost},{}}}", percentiles(lat));
    Ok(())
}

fn throughput(n: u64) -> Res<()> {
    let name = format!("ps-bench-tput-{}", std::process::id());
    let child = spawn_self(&["drain", &name, &n.to_string()]);
    let _producer = flood_pushes(&name, n)?; // kept open until the consumer is done
    let out = child_output(child?)?;
    println!(
        "{{\"test\":\"throughput\",\"size\":32,{}",
        out.trim_start_matches('{')
    );
    Ok(())
}

fn drain(name: &str, n: u64) -> Res<()> {
    let mut c = open_retry(name)?;
    let mut buf = [0u8; 64];
    let mut got = 0u64;
    let mut first: Option<Instant> = None;
    let mut deadline = Deadline::new();
    while got < n && !deadline.passed() {
        if let Pop::Record { .. } = c.pop_into(&mut buf)? {
            first.get_or_insert_with(Instant::now);
            got += 1;
        }
    }
    let secs = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
    println!(
        "{{\"count\":{got},\"seconds\":{secs:.4},\"msgs_per_s\":{:.0}}}",
        got as f64 / secs.max(1e-9)
    );
    Ok(())
}

fn produce(name: &str, n: u64, interval_ns: u64) -> Res<()> {
    let p = paced_producer(name, n, interval_ns)?;
    // Let the consumer drain before the file goes away.
    std::thread::sleep(Duration::from_millis(200));
    println!("{{\"test\":\"produce\",\"dropped\":{}}}", p.stats().dropped);
    Ok(())
}

/// Throughput producer for an external consumer: 32-byte messages, pushed as fast as taken.
fn flood(name: &str, n: u64) -> Res<()> {
    let (p, sent) = flood_pushes(name, n)?;
    let t0 = Instant::now();
    wait_until("the consumer to drain", || {
        p.backlog() == 0 || t0.elapsed() > DEADLINE
    })?;
    println!("{{\"test\":\"flood\",\"sent\":{sent}}}");
    Ok(())
}

/// Creates the ring, waits for a consumer, and pushes `n` 32-byte messages as fast as it takes
/// them (never dropping); returns the producer and how many were sent before the deadline.
fn flood_pushes(name: &str, n: u64) -> Res<(Producer, u64)> {
    let mut p = Producer::create(name, CAPACITY, ProducerOptions::default())?;
    wait_until("the consumer to attach", || p.consumer_pid() != 0)?;
    let msg = [0x5au8; 32];
    let mut deadline = Deadline::new();
    let mut sent = 0;
    while sent < n && !deadline.passed() {
        if p.try_push(&msg)? {
            sent += 1;
        } else {
            std::hint::spin_loop();
        }
    }
    Ok((p, sent))
}

/// Push and pop in one thread: the instruction cost of the ring alone, no cache line crossing.
fn local(n: u64) -> Res<()> {
    let name = format!("ps-bench-local-{}", std::process::id());
    let mut p = Producer::create(&name, CAPACITY, ProducerOptions::default())?;
    let mut c = Consumer::open(&name, StartAt::Oldest)?;
    let msg = [0x5au8; 32];
    let mut buf = [0u8; 64];
    let t0 = Instant::now();
    for _ in 0..n / 1000 {
        for _ in 0..1000 {
            p.push(&msg)?;
        }
        for _ in 0..1000 {
            c.pop_into(&mut buf)?;
        }
    }
    let ns = t0.elapsed().as_nanos() as f64 / n as f64;
    println!("{{\"test\":\"local\",\"ns_per_push_pop\":{ns:.1}}}");
    Ok(())
}

fn bench_cpu() -> Option<usize> {
    std::env::var("PERP_SIGNAL_BENCH_CPU").ok()?.parse().ok()
}

fn main() -> Res<()> {
    if let Some(cpu) = bench_cpu() {
        if !pin_to_cpu(cpu) {
            eprintln!("shm_bench: could not pin to CPU {cpu}; running unpinned");
        }
    }
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("floor") => floor(arg(&args, 2, "ROUNDS")?),
        Some("pong") => pong(&args[2], arg(&args, 3, "ROUNDS")?),
        Some("latency") => latency(arg(&args, 2, "N")?, arg(&args, 3, "INTERVAL_NS")?),
        Some("consume") => consume(&args[2], arg(&args, 3, "N")?),
        Some("throughput") => throughput(arg(&args, 2, "N")?),
        Some("drain") => drain(&args[2], arg(&args, 3, "N")?),
        Some("local") => local(arg(&args, 2, "N")?),
        Some("flood") => flood(&args[2], arg(&args, 3, "N")?),
        Some("produce") => produce(&args[2], arg(&args, 3, "N")?, arg(&args, 4, "INTERVAL_NS")?),
        _ => Err("usage: shm_bench floor|latency|throughput|produce|flood ... (see the source)".into()),
    }
}

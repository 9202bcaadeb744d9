//! Rust consumer of a perp-signal TCP fan-out: prints one line per trade as `perp-signal
//! tcp-client` does, or with `--stamps` records when each frame arrived (for bench/e2e.js).
//!
//!   cargo run --release --example tcp_consumer -- [--addr 127.0.0.1:9000]
//!       [--busy-poll | --busy-poll-yield] [--stamps FILE|-] [--count N] [--drain]
//!
//! `--busy-poll` reads a non-blocking socket in a loop (one core stays busy; the server's writes
//! then never have to wake this process); `--busy-poll-yield` also yields the core between empty
//! reads (for a core shared with other processes). `--stamps` writes, once the server closes, one line per
//! frame after the header: `<frame index> <CLOCK_MONOTONIC ns of the read that completed it>
//! <trades in it>`, and prints no trades. Exit 0 when the server closes between frames or after
//! `--count` trades, 1 on a refusal or any other error (with the reason), 2 for usage errors.
//! `--drain` speaks no protocol at all: it reads and throws away bytes until EOF (the bench's
//! reader for the bare cost of a loopback write), then prints the byte count.
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use perp_signal_core::tcp_consumer::{Message, ReadMode, Received, TcpConsumer, Trade};
use perp_signal_core::wire::Wire;

const USAGE: &str =
    "usage: tcp_consumer [--addr HOST:PORT] [--busy-poll | --busy-poll-yield] [--stamps FILE|-] [--count N] [--drain]";

struct Args {
    addr: String,
    mode: ReadMode,
    stamps: Option<String>,
    count: u64,
    drain: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: "127.0.0.1:9000".into(),
        mode: ReadMode::Block,
        stamps: None,
        count: 0,
        drain: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--addr" => a.addr = value("--addr")?,
            "--busy-poll" => a.mode = ReadMode::BusyPoll,
            "--busy-poll-yield" => a.mode = ReadMode::BusyPollYield,
            "--drain" => a.drain = true,
            "--stamps" => a.stamps = Some(value("--stamps")?),
            "--count" => {
                let v = value("--count")?;
                a.count = v
                    .parse()
                    .map_err(|_| format!("--count {v} must be a whole number of trades (0: no limit)"))?;
            }
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of a Unix time in ms (proleptic Gregorian, as JS `toISOString`).
fn iso_time(out: &mut Vec<u8>, ms: i64) {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Days to civil date: H. Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    );
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The line `perp-signal tcp-client` prints for a trade.
fn trade_line(out: &mut Vec<u8>, t: &Trade) {
    iso_time(out, t.time);
    out.push(b' ');
    out.extend_from_slice(t.symbol.as_bytes());
    // m = buyer is maker, so the aggressor sold.
    out.extend_from_slice(if t.maker { b" SELL " } else { b" BUY  " });
    t.write_qty(out);
    out.extend_from_slice(b" @ ");
    t.write_price(out);
    if let Some(id) = t.trade_id {
        let _ = write!(out, " id={id}");
    }
    let _ = writeln!(out, " latency={}ms", now_ms() - t.time);
}

/// Lines for what a frame says besides its trade (losses, gap notices), as tcp-client prints them.
fn notice_lines(out: &mut Vec<u8>, r: &Received, symbols: &[String]) {
    for loss in [r.stream_loss, r.asset_loss].into_iter().flatten() {
        let scope = loss
            .asset
            .and_then(|i| symbols.get(i))
            .map_or("stream", String::as_str);
        let _ = writeln!(out, "# lost: {} frame(s) of the {scope} missing", loss.missing);
    }
    if let Some(Message::Gap {
        symbol,
        last_id,
        next_id,
        reason,
        ..
    }) = r.message
    {
        let why = if reason == 1 { "reconnect" } else { "jump" };
        let _ = writeln!(
            out,
            "# gap {symbol}: trades after {last_id} up to {next_id} missing ({why})"
        );
    }
}

/// Reads and discards until EOF, waiting as `a.mode` says; prints the byte count.
fn drain(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut s = std::net::TcpStream::connect(a.addr.as_str())
        .map_err(|e| format!("cannot connect to {}: {e}", a.addr))?;
    s.set_nodelay(true)?;
    s.set_nonblocking(a.mode != ReadMode::Block)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && a.mode == ReadMode::BusyPollYield => {
                std::thread::yield_now()
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    println!("{total}");
    Ok(())
}

fn run(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if a.drain {
        return drain(a);
    }
    let mut c = TcpConsumer::connect(a.addr.as_str(), a.mode)?;
    let wire = match c.wire() {
        Wire::V1 => "v1",
        Wire::V2 => "v2",
    };
    let symbols = c.symbols().join(",");
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mode = match a.mode {
        ReadMode::Block => "blocking reads",
        ReadMode::BusyPoll => "busy-polling",
        ReadMode::BusyPollYield => "busy-polling, yielding the core between empty reads",
    };
    eprintln!(
        "tcp_consumer: connected to {} ({wire}, {symbols}; {mode})",
        a.addr
    );
    let mut trades = 0u64;
    if let Some(path) = &a.stamps {
        // Kept in memory while the stream runs: no file write between two frames.
        let mut stamps: Vec<(u64, u64, u8)> = Vec::with_capacity(1 << 20);
        while let Some(r) = c.next()? {
            let n = u8::from(matches!(r.message, Some(Message::Trade(_))));
            stamps.push((r.index, r.recv_ns, n));
            trades += u64::from(n);
            if a.count > 0 && trades >= a.count {
                break;
            }
        }
        let mut text = Vec::with_capacity(stamps.len() * 28);
        for (i, ns, n) in stamps {
            writeln!(text, "{i} {ns} {n}")?;
        }
        if path == "-" {
            out.write_all(&text)?;
        } else {
            std::fs::write(path, text).map_err(|e| format!("cannot write --stamps {path}: {e}"))?;
        }
        return Ok(out.flush()?);
    }
    writeln!(out, "# connected ({wire}, {symbols})")?;
    // The asset list is fixed for a connection (a snapshot with another list is an error).
    let names: Vec<String> = c.symbols().iter().map(|s| s.to_string()).collect();
    let mut line = Vec::with_capacity(256);
    let mut closed = true;
    while let Some(r) = c.next()? {
        line.clear();
        notice_lines(&mut line, &r, &names);
        if let Some(Message::Trade(t)) = &r.message {
            trade_line(&mut line, t);
            trades += 1;
        }
        out.write_all(&line)?;
        if a.count > 0 && trades == a.count {
            closed = false;
            break;
        }
    }
    out.flush()?;
    if closed {
        eprintln!("tcp_consumer: server closed the connection after {trades} trades");
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(why) => {
            if why.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("tcp_consumer: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        // `| head`: the reader of our output is gone, which is no failure of ours.
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tcp_consumer: {e}");
            ExitCode::from(1)
        }
    }
}

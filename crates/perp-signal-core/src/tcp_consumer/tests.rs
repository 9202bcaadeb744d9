//! Real sockets on 127.0.0.1: a thread serves bytes made by the core encoders (START, header,
//! frames) in the writes a test chooses, and the consumer must decode the same trades however the
//! stream is cut.
use super::*;
use crate::wire::frame::put_frame;
use crate::wire::{AssetSpec, TradeRef};
use std::io::Write;
use std::net::TcpListener;
use std::thread;

const MODES: [ReadMode; 3] = [ReadMode::Block, ReadMode::BusyPoll, ReadMode::BusyPollYield];

/// What a frame should decode to, owned, with decimals canonical (trailing zeros trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Trade {
        symbol: String,
        time: i64,
        id: Option<u64>,
        price: String,
        qty: String,
        maker: bool,
        kind: Option<String>,
    },
    Heartbeat {
        time: u64,
    },
    Gap {
        symbol: String,
        last_id: u64,
        next_id: u64,
    },
    Snapshot,
    /// No message: the frame's asset is out of sync after a loss.
    Skipped,
}

fn canon(s: &str) -> String {
    if !s.contains('.') {
        return s.to_string();
    }
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn got(r: &Received) -> Got {
    match r.message {
        None => Got::Skipped,
        Some(Message::Trade(t)) => {
            let (mut p, mut q) = (Vec::new(), Vec::new());
            t.write_price(&mut p);
            t.write_qty(&mut q);
            Got::Trade {
                symbol: t.symbol.to_string(),
                time: t.time,
                id: t.trade_id,
                price: canon(std::str::from_utf8(&p).unwrap()),
                qty: canon(std::str::from_utf8(&q).unwrap()),
                maker: t.maker,
                kind: t.kind.map(|k| String::from_utf8(k.to_vec()).unwrap()),
            }
        }
        Some(Message::Heartbeat { time, .. }) => Got::Heartbeat { time },
        Some(Message::Gap {
            symbol,
            last_id,
            next_id,
            ..
        }) => Got::Gap {
            symbol: symbol.to_string(),
            last_id,
            next_id,
        },
        Some(Message::Snapshot { .. }) => Got::Snapshot,
    }
}

const REF_TIME: i64 = 1_723_161_256_000;
const SYMBOLS: [&str; 3] = ["BTCUSDT", "ETHUSDT", "SOLUSDT"];

fn specs() -> Vec<AssetSpec> {
    let s = |symbol: &str, price: &str, ps: Option<u8>| AssetSpec {
        symbol: symbol.into(),
        ref_price: price.into(),
        ref_qty: "0.001".into(),
        price_scale: ps,
        qty_scale: ps.map(|_| 3),
    };
    vec![
        s("BTCUSDT", "61800.30", Some(2)),
        s("ETHUSDT", "2600.15", Some(2)),
        s("SOLUSDT", "150.123", None),
    ]
}

/// (asset, time, id, price, qty, maker, type): id jumps, a scale that grows in band, other types.
const TRADES: [(usize, i64, u64, &str, &str, bool, &str); 9] = [
    (
        0,
        1_723_161_256_322,
        5_266_583_935,
        "61800.30",
        "0.006",
        false,
        "MARKET",
    ),
    (
        1,
        1_723_161_256_330,
        4_000_000_001,
        "2600.17",
        "1.250",
        true,
        "MARKET",
    ),
    (
        0,
        1_723_161_256_331,
        5_266_583_936,
        "61799.90",
        "12.000",
        true,
        "MARKET",
    ),
    (
        2,
        1_723_161_256_340,
        900_000_001,
        "150.12345",
        "3",
        false,
        "MARKET",
    ),
    (
        0,
        1_723_161_256_340,
        5_266_583_990,
        "61900",
        "0.001",
        false,
        "LIQUIDATION",
    ),
    (2, 1_723_161_256_341, 900_000_002, "149.9", "0.5", true, "MARKET"),
    (
        1,
        1_723_161_256_100,
        4_000_000_002,
        "2599.01",
        "0.010",
        false,
        "ADL",
    ),
    (
        0,
        1_723_161_256_400,
        5_266_583_991,
        "61800.31",
        "100",
        true,
        "MARKET",
    ),
    (
        2,
        1_723_161_256_500,
        900_000_003,
        "151",
        "1000.25",
        false,
        "MARKET",
    ),
];

fn trade_ref(i: usize) -> TradeRef<'static> {
    let (asset, time, id, price, qty, maker, kind) = TRADES[i];
    TradeRef {
        asset,
        time,
        trade_id: id,
        price: price.as_bytes(),
        qty: qty.as_bytes(),
        maker,
        kind: kind.as_bytes(),
    }
}

fn expected_trade(i: usize, wire: Wire) -> Got {
    let (asset, time, id, price, qty, maker, kind) = TRADES[i];
    Got::Trade {
        symbol: SYMBOLS[asset].into(),
        time,
        id: (wire == Wire::V2).then_some(id),
        price: canon(price),
        qty: canon(qty),
        maker,
        kind: (wire == Wire::V2).then(|| kind.to_string()),
    }
}

fn handshake(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_frame(&mut out, START);
    put_frame(&mut out, header);
    out
}

/// v1 stream: START, header, every trade; and what it decodes to.
fn v1_stream() -> (Vec<u8>, Vec<Got>) {
    let mut e = v1::Encoder::new(&specs(), REF_TIME).unwrap();
    let mut out = handshake(&e.header());
    let mut want = Vec::new();
    for i in 0..TRADES.len() {
        e.encode_framed(&trade_ref(i), &mut out).unwrap();
        want.push(expected_trade(i, Wire::V1));
    }
    (out, want)
}

/// v2 stream: the trades with a heartbeat, a gap notice and a snapshot among them.
fn v2_stream() -> (Vec<u8>, Vec<Got>) {
    let mut e = v2::Encoder::new(&specs(), REF_TIME).unwrap();
    let mut out = handshake(&e.header());
    let mut want = Vec::new();
    for i in 0..TRADES.len() {
        e.encode_framed(&trade_ref(i), &mut out).unwrap();
        want.push(expected_trade(i, Wire::V2));
        match i {
            2 => {
                put_frame(&mut out, &e.heartbeat(1_723_161_257_000));
                want.push(Got::Heartbeat {
                    time: 1_723_161_257_000,
                });
            }
            4 => {
                put_frame(&mut out, &e.gap(1, 4_000_000_001, 4_000_000_002, 0).unwrap());
                want.push(Got::Gap {
                    symbol: "ETHUSDT".into(),
                    last_id: 4_000_000_001,
                    next_id: 4_000_000_002,
                });
            }
            6 => {
                put_frame(&mut out, &e.snapshot());
                want.push(Got::Snapshot);
            }
            _ => {}
        }
    }
    (out, want)
}

/// Serves `parts` as separate writes, `pause` apart, then closes. Errors on the server side (the
/// client hung up early) end the thread quietly: the client's result is what a test checks.
fn serve(parts: Vec<Vec<u8>>, pause: Duration) -> (SocketAddr, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let _ = s.set_nodelay(true);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 && !pause.is_zero() {
                thread::sleep(pause);
            }
            if s.write_all(p).is_err() {
                return;
            }
        }
    });
    (addr, h)
}

fn opts(mode: ReadMode) -> Options {
    Options {
        idle_timeout: Some(Duration::from_secs(5)),
        ..Options::new(mode)
    }
}

/// Everything the consumer decodes until the server closes (or the first error).
fn collect(addr: SocketAddr, mode: ReadMode) -> Result<Vec<Got>, TcpError> {
    let mut c = TcpConsumer::connect_with(addr, opts(mode))?;
    let mut out = Vec::new();
    while let Some(r) = c.next()? {
        assert_eq!(r.index, out.len() as u64);
        out.push(got(&r));
    }
    assert_eq!(c.frames(), out.len() as u64);
    Ok(out)
}

fn run(parts: Vec<Vec<u8>>, mode: ReadMode) -> Result<Vec<Got>, TcpError> {
    let (addr, h) = serve(parts, Duration::from_micros(300));
    let r = collect(addr, mode);
    h.join().unwrap();
    r
}

#[test]
fn decodes_the_same_trades_at_every_split_point_v1_and_v2_both_modes() {
    for (stream, wire) in [(v1_stream(), Wire::V1), (v2_stream(), Wire::V2)] {
        let (bytes, want) = stream;
        assert_eq!(want.len(), if wire == Wire::V1 { 9 } else { 12 });
        for mode in MODES {
            for cut in 1..bytes.len() {
                let parts = vec![bytes[..cut].to_vec(), bytes[cut..].to_vec()];
                let got = run(parts, mode).unwrap_or_else(|e| panic!("{wire:?} {mode:?} cut {cut}: {e}"));
                assert_eq!(got, want, "{wire:?} {mode:?} cut at byte {cut}");
            }
            // And one byte per write.
            let parts = bytes.iter().map(|b| vec![*b]).collect();
            let (addr, h) = serve(parts, Duration::ZERO);
            assert_eq!(
                collect(addr, mode).unwrap(),
                want,
                "{wire:?} {mode:?} byte by byte"
            );
            h.join().unwrap();
        }
    }
}

#[test]
fn header_tells_the_wire_and_symbols() {
    for (bytes, wire) in [(v1_stream().0, Wire::V1), (v2_stream().0, Wire::V2)] {
        for mode in MODES {
            let (addr, h) = serve(vec![bytes.clone()], Duration::ZERO);
            let c = TcpConsumer::connect(addr, mode).unwrap();
            assert_eq!(c.wire(), wire);
            assert_eq!(c.read_mode(), mode);
            assert_eq!(c.symbols(), SYMBOLS);
            assert_eq!(c.symbol(3), None);
            assert!(c.socket().nodelay().unwrap());
            drop(c);
            h.join().unwrap();
        }
    }
}

#[test]
fn a_refusal_frame_is_a_typed_error_carrying_the_reason() {
    let mut refusal = Vec::new();
    put_frame(
        &mut refusal,
        b"ERROR server is full: 2 clients connected (max-clients)",
    );
    for mode in MODES {
        let e = run(vec![refusal.clone()], mode).unwrap_err();
        assert!(
            matches!(&e, TcpError::Refused(r) if r == "server is full: 2 clients connected (max-clients)"),
            "{e:?}"
        );
        assert_eq!(e.code(), "E_REFUSED");
        assert_eq!(
            e.to_string(),
            "refused by server: server is full: 2 clients connected (max-clients)"
        );
    }
}

#[test]
fn a_first_frame_other_than_start_is_not_perp_signal() {
    let mut hello = Vec::new();
    put_frame(&mut hello, b"HELLO");
    for mode in MODES {
        let e = run(vec![hello.clone()], mode).unwrap_err();
        assert!(matches!(&e, TcpError::NotStart(f) if f == "HELLO"), "{e:?}");
        assert!(e.to_string().contains("not a perp-signal TCP server"));
    }
}

#[test]
fn closing_inside_a_frame_is_an_error_and_between_frames_a_clean_end() {
    let (bytes, want) = v2_stream();
    let hs = handshake(&v2::Encoder::new(&specs(), REF_TIME).unwrap().header()).len();
    for mode in MODES {
        // Before START, and between START and the header.
        assert!(matches!(
            run(vec![vec![]], mode),
            Err(TcpError::ClosedInHandshake)
        ));
        assert!(matches!(
            run(vec![bytes[..9].to_vec()], mode),
            Err(TcpError::ClosedInHandshake)
        ));
        // Inside the header.
        let e = run(vec![bytes[..hs - 1].to_vec()], mode).unwrap_err();
        assert!(matches!(e, TcpError::ClosedMidFrame { .. }), "{e:?}");
        // Right after the header: a clean end with nothing decoded.
        assert_eq!(run(vec![bytes[..hs].to_vec()], mode).unwrap(), vec![]);
        // Inside the first trade's length prefix, and inside its payload.
        for cut in [hs + 2, hs + 6] {
            let e = run(vec![bytes[..cut].to_vec()], mode).unwrap_err();
            assert!(matches!(e, TcpError::ClosedMidFrame { .. }), "cut {cut}: {e:?}");
            assert_eq!(e.code(), "E_CLOSED_MID_FRAME");
        }
        assert_eq!(run(vec![bytes.clone()], mode).unwrap(), want);
    }
}

#[test]
fn an_absurd_length_is_refused_before_anything_is_allocated_for_it() {
    let (bytes, _) = v1_stream();
    let hs = handshake(&v1::Encoder::new(&specs(), REF_TIME).unwrap().header()).len();
    for mode in MODES {
        // As the first frame, and after the header (then the length alone, no payload follows).
        let e = run(vec![vec![0xff, 0xff, 0xff, 0x7f, b'S']], mode).unwrap_err();
        assert!(
            matches!(
                e,
                TcpError::FrameTooLong {
                    len: 0x7fff_ffff,
                    max: MAX_FRAME
                }
            ),
            "{e:?}"
        );
        let mut s = bytes[..hs].to_vec();
        s.extend_from_slice(&((MAX_FRAME + 1) as u32).to_le_bytes());
        let e = run(vec![s], mode).unwrap_err();
        assert!(matches!(e, TcpError::FrameTooLong { .. }), "{e:?}");
        assert_eq!(e.code(), "E_FRAME_TOO_LONG");
        // A lower bound of the caller's applies too.
        let (addr, h) = serve(vec![bytes.clone()], Duration::ZERO);
        let o = Options {
            max_frame: 8,
            ..Options::new(mode)
        };
        let e = TcpConsumer::connect_with(addr, o).err().unwrap();
        assert!(matches!(e, TcpError::FrameTooLong { max: 8, .. }), "{e:?}");
        h.join().unwrap();
    }
}

#[test]
fn an_undecodable_frame_names_its_index_and_the_codec_error() {
    let (bytes, _) = v2_stream();
    let hs = handshake(&v2::Encoder::new(&specs(), REF_TIME).unwrap().header()).len();
    let mut s = bytes[..hs].to_vec();
    put_frame(&mut s, &[0x07, 0, 0]);
    for mode in MODES {
        let e = run(vec![s.clone()], mode).unwrap_err();
        assert!(matches!(e, TcpError::Decode { index: 0, .. }), "{e:?}");
        assert_eq!(e.code(), "E_UNKNOWN_KIND");
    }
    // A header that is neither v1 nor v2.
    let mut bad = Vec::new();
    put_frame(&mut bad, START);
    put_frame(&mut bad, b"\x09junk");
    let e = run(vec![bad], ReadMode::Block).unwrap_err();
    assert_eq!(e.code(), "E_BAD_MAGIC");
}

#[test]
fn v2_losses_are_reported_and_a_snapshot_brings_the_asset_back() {
    let mut e = v2::Encoder::new(&specs(), REF_TIME).unwrap();
    let mut s = handshake(&e.header());
    let mut lost = Vec::new();
    e.encode_framed(&trade_ref(0), &mut s).unwrap();
    e.encode_framed(&trade_ref(2), &mut lost).unwrap(); // BTC, never sent
    e.encode_framed(&trade_ref(1), &mut s).unwrap(); // ETH: stream loss only
    e.encode_framed(&trade_ref(4), &mut s).unwrap(); // BTC: out of sync
    put_frame(&mut s, &e.snapshot());
    e.encode_framed(&trade_ref(7), &mut s).unwrap(); // BTC again
    for mode in MODES {
        let (addr, h) = serve(vec![s.clone()], Duration::ZERO);
        let mut c = TcpConsumer::connect_with(addr, opts(mode)).unwrap();
        let r = c.next().unwrap().unwrap();
        assert_eq!((r.stream_loss, r.asset_loss), (None, None));
        let r = c.next().unwrap().unwrap();
        assert_eq!(
            r.stream_loss,
            Some(Loss {
                asset: None,
                missing: 1
            })
        );
        assert_eq!((r.asset_loss, got(&r)), (None, expected_trade(1, Wire::V2)));
        let r = c.next().unwrap().unwrap();
        assert_eq!(
            r.asset_loss,
            Some(Loss {
                asset: Some(0),
                missing: 1
            })
        );
        assert_eq!(got(&r), Got::Skipped);
        assert_eq!(got(&c.next().unwrap().unwrap()), Got::Snapshot);
        let r = c.next().unwrap().unwrap();
        assert_eq!((r.stream_loss, r.asset_loss), (None, None));
        assert_eq!(got(&r), expected_trade(7, Wire::V2));
        assert!(c.next().unwrap().is_none());
        h.join().unwrap();
    }
}

#[test]
fn receive_stamps_are_the_monotonic_time_of_the_read_that_completed_each_frame() {
    let (bytes, _) = v1_stream();
    let hs = handshake(&v1::Encoder::new(&specs(), REF_TIME).unwrap().header()).len();
    // Trade 0 whole plus half of trade 1 in the first write; the rest 30 ms later.
    let mut first = bytes[..hs].to_vec();
    let mut e = v1::Encoder::new(&specs(), REF_TIME).unwrap();
    let mut one = Vec::new();
    e.encode_framed(&trade_ref(0), &mut one).unwrap();
    first.extend_from_slice(&bytes[hs..hs + one.len() + 2]);
    let second = bytes[hs + one.len() + 2..].to_vec();
    for mode in MODES {
        let t0 = mono_ns();
        let (addr, h) = serve(vec![first.clone(), second.clone()], Duration::from_millis(30));
        let mut c = TcpConsumer::connect_with(addr, opts(mode)).unwrap();
        assert!(c.header_recv_ns() >= t0);
        let a = c.next().unwrap().unwrap().recv_ns;
        let mut rest = Vec::new();
        while let Some(r) = c.next().unwrap() {
            rest.push(r.recv_ns);
        }
        let t1 = mono_ns();
        assert_eq!(rest.len(), TRADES.len() - 1);
        assert!(a >= c.header_recv_ns() && a < t0 + 25_000_000, "{mode:?}");
        // Trade 1 was completed by the second write's read, 30 ms on.
        assert!(rest[0] >= a + 25_000_000, "{mode:?}: {} vs {a}", rest[0]);
        assert!(rest.windows(2).all(|w| w[0] <= w[1]) && *rest.last().unwrap() <= t1);
        h.join().unwrap();
    }
}

#[test]
fn waits_are_bounded_by_the_handshake_and_idle_timeouts_in_both_modes() {
    let (bytes, _) = v2_stream();
    let hs = handshake(&v2::Encoder::new(&specs(), REF_TIME).unwrap().header()).len();
    for mode in MODES {
        // A server that accepts and says nothing.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let quiet = thread::spawn(move || {
            let c = l.accept();
            thread::sleep(Duration::from_millis(400));
            drop(c);
        });
        let o = Options {
            handshake_timeout: Duration::from_millis(60),
            ..Options::new(mode)
        };
        let t = Instant::now();
        let e = TcpConsumer::connect_with(addr, o).err().unwrap();
        assert!(matches!(e, TcpError::HandshakeTimeout(_)), "{e:?}");
        assert!(t.elapsed() < Duration::from_millis(350));
        quiet.join().unwrap();

        // Handshake, then silence.
        let (addr, h) = serve(vec![bytes[..hs].to_vec(), vec![]], Duration::from_millis(400));
        let o = Options {
            idle_timeout: Some(Duration::from_millis(60)),
            ..Options::new(mode)
        };
        let mut c = TcpConsumer::connect_with(addr, o).unwrap();
        let t = Instant::now();
        let e = c.next().err().unwrap();
        assert!(
            matches!(e, TcpError::Idle(d) if d == Duration::from_millis(60)),
            "{e:?}"
        );
        assert!(t.elapsed() >= Duration::from_millis(50) && t.elapsed() < Duration::from_millis(350));
        drop(c);
        h.join().unwrap();
    }
}

#[test]
fn connect_errors_and_bad_options_say_what_to_do() {
    // A port nothing listens on: bind, note it, close.
    let addr = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let e = TcpConsumer::connect(addr, ReadMode::Block).err().unwrap();
    assert_eq!(e.code(), "E_CONNECT");
    assert!(e.to_string().contains(&addr.to_string()), "{e}");
    let o = Options {
        idle_timeout: Some(Duration::ZERO),
        ..Options::new(ReadMode::Block)
    };
    assert_eq!(
        TcpConsumer::connect_with(addr, o).err().unwrap().code(),
        "E_INVALID_ARG"
    );
    let o = Options {
        max_frame: MAX_FRAME + 1,
        ..Options::new(ReadMode::Block)
    };
    assert_eq!(
        TcpConsumer::connect_with(addr, o).err().unwrap().code(),
        "E_INVALID_ARG"
    );
}

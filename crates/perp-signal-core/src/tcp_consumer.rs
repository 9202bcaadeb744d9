//! Rust consumer of the TCP fan-out (docs/tcp.md): connects, expects `START` (or reads the
//! server's `ERROR <reason>` refusal), decodes v1 or v2 as the header announces, then hands out
//! each frame's decoded message with the monotonic time of the socket read that completed it.
//!
//! Two ways to wait for bytes. [`ReadMode::Block`] sleeps in `recv`, so every write of the server
//! has to wake this thread (on the Firecracker VM we measured that costs the *writer* 10-12 µs per
//! write). [`ReadMode::BusyPoll`] keeps the socket non-blocking and calls `recv` in a loop on a
//! core of its own, as latency-sensitive consumers do: no wake-up, the writer's call is ~3-4 µs.
//!
//! Messages borrow the consumer's buffer and decoder: nothing is allocated per message.
#![forbid(unsafe_code)]

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::ops::Range;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::decimal::{write_fixed, write_fixed_signed, write_trimmed};
use crate::error::CodecError;
use crate::wire::frame::{MAX_FRAME, START};
use crate::wire::v2::Loss;
use crate::wire::{self, v1, v2, Wire};

/// Payload prefix of the frame a server sends instead of `START` when it refuses a client.
pub const REFUSAL_PREFIX: &[u8] = b"ERROR ";

/// How the consumer waits for the server's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Blocking `recv`: the thread sleeps until bytes arrive.
    Block,
    /// Non-blocking `recv` in a loop (with `std::hint::spin_loop` between empty reads): one core
    /// stays busy, and no write of the server has to wake a sleeping thread.
    BusyPoll,
    /// As `BusyPoll`, with `sched_yield` (`std::thread::yield_now`) between empty reads: a process
    /// woken on the same core (e.g. the forwarder itself, when there is no core to spare) runs at
    /// the next empty read instead of waiting for the poller's scheduler slice to end.
    BusyPollYield,
}

impl ReadMode {
    fn polls(self) -> bool {
        self != ReadMode::Block
    }
}

/// Connection options; [`Options::new`] gives the defaults for a mode.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: ReadMode,
    /// Bounds the TCP connect and then the wait for `START` and the header (default 5 s).
    pub handshake_timeout: Duration,
    /// After the handshake, a wait for bytes longer than this ends in [`TcpError::Idle`]
    /// (default none: a v1 stream of a quiet market is silent; v2 servers send heartbeats).
    pub idle_timeout: Option<Duration>,
    /// Frames announcing more payload bytes than this are refused (default and upper limit: the
    /// codec's 1 MiB).
    pub max_frame: usize,
}

impl Options {
    pub fn new(mode: ReadMode) -> Self {
        Options {
            mode,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: None,
            max_frame: MAX_FRAME,
        }
    }
}

#[derive(Debug, Error)]
pub enum TcpError {
    #[error("cannot connect to {addr}: {source}; is the forwarder running (perp-signal ... tcp --port N)?")]
    Connect { addr: String, source: io::Error },
    #[error("refused by server: {0}")]
    Refused(String),
    #[error("first frame is {0:?}, not START: not a perp-signal TCP server?")]
    NotStart(String),
    #[error("server closed the connection before sending START and the header")]
    ClosedInHandshake,
    #[error("server closed the connection inside a frame ({have} of {need} bytes; a server drops clients that read too slowly)")]
    ClosedMidFrame { have: usize, need: usize },
    #[error("frame announces {len} bytes, more than the limit of {max}: the stream is corrupt or not perp-signal framing")]
    FrameTooLong { len: usize, max: usize },
    #[error("no START and header within {0:?}: not a perp-signal TCP server?")]
    HandshakeTimeout(Duration),
    #[error("no data for {0:?} (dead feed?); reconnect")]
    Idle(Duration),
    #[error("bad header: {0}")]
    Header(CodecError),
    #[error("undecodable frame {index} after the header: {source}; reconnect to start from a fresh header")]
    Decode { index: u64, source: CodecError },
    #[error("{0}")]
    InvalidArg(String),
    #[error("socket: {0}")]
    Io(#[from] io::Error),
}

impl TcpError {
    /// Stable, machine-readable code (decode errors give the codec's own code).
    pub fn code(&self) -> &'static str {
        match self {
            TcpError::Connect { .. } => "E_CONNECT",
            TcpError::Refused(_) => "E_REFUSED",
            TcpError::NotStart(_) => "E_NOT_START",
            TcpError::ClosedInHandshake => "E_CLOSED",
            TcpError::ClosedMidFrame { .. } => "E_CLOSED_MID_FRAME",
            TcpError::FrameTooLong { .. } => "E_FRAME_TOO_LONG",
            TcpError::HandshakeTimeout(_) => "E_HANDSHAKE_TIMEOUT",
            TcpError::Idle(_) => "E_IDLE",
            TcpError::Header(e) | TcpError::Decode { source: e, .. } => e.code(),
            TcpError::InvalidArg(_) => "E_INVALID_ARG",
            TcpError::Io(_) => "E_IO",
        }
    }
}

/// CLOCK_MONOTONIC in ns: the clock of Node's `process.hrtime` on Linux, so stamps taken here
/// and in the forwarder subtract. Elsewhere: ns since the first call (only differences mean
/// anything).
pub fn mono_ns() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        (t.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(t.tv_nsec as u64)
    }
    #[cfg(not(target_os = "linux"))]
    {
        static ANCHOR: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        ANCHOR.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
}

/// One decoded trade. `price` is in units of 10^-`price_scale`, `qty` of 10^-`qty_scale` (v1:
/// both 5). v1 carries no trade id, type or sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade<'a> {
    pub wire: Wire,
    pub asset: usize,
    pub symbol: &'a str,
    /// The buyer was the maker (the aggressor sold).
    pub maker: bool,
    /// Trade time `T`, ms since the Unix epoch.
    pub time: i64,
    pub price: i64,
    pub price_scale: u8,
    pub qty: u64,
    pub qty_scale: u8,
    pub trade_id: Option<u64>,
    /// `X`, e.g. `MARKET`.
    pub kind: Option<&'a [u8]>,
    pub seq: Option<u64>,
    pub asset_seq: Option<u64>,
}

impl Trade<'_> {
    /// Appends the price as the Node client prints it: v2 with the exchange's own decimals
    /// (`61800.30`), v1 at 1e-5 with trailing zeros trimmed (`61800.3`).
    pub fn write_price(&self, out: &mut Vec<u8>) {
        match self.wire {
            Wire::V1 => write_trimmed(out, self.price, self.price_scale),
            Wire::V2 => write_fixed_signed(out, self.price, self.price_scale),
        }
    }

    /// Appends the quantity the same way as [`Trade::write_price`].
    pub fn write_qty(&self, out: &mut Vec<u8>) {
        match (self.wire, i64::try_from(self.qty)) {
            (Wire::V1, Ok(q)) => write_trimmed(out, q, self.qty_scale),
            _ => write_fixed(out, self.qty, self.qty_scale),
        }
    }
}

/// The message of one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    Trade(Trade<'a>),
    /// v2: the server was quiet; `time` is its clock, ms.
    Heartbeat {
        seq: u64,
        time: u64,
    },
    /// v2: the trades of `symbol` strictly between `last_id` and `next_id` are missing.
    /// `reason`: 0 an id jump within a connection, 1 a reconnect.
    Gap {
        symbol: &'a str,
        asset: usize,
        seq: u64,
        asset_seq: u64,
        last_id: u64,
        next_id: u64,
        reason: u8,
    },
    /// v2: the decoder's state was replaced by a snapshot.
    Snapshot {
        seq: u64,
    },
}

/// One frame as received: its place in the stream, when it arrived, and what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received<'a> {
    /// Index of the frame among those after the header, from 0.
    pub index: u64,
    /// [`mono_ns`] right after the socket read that brought the frame's last byte.
    pub recv_ns: u64,
    /// v2: frames of the stream lost before this one.
    pub stream_loss: Option<Loss>,
    /// v2: frames of this frame's asset lost before it.
    pub asset_loss: Option<Loss>,
    /// None when the frame's asset is out of sync after a loss (v2, until the next snapshot).
    pub message: Option<Message<'a>>,
}

/// Length-prefixed frames off a socket, read into one reused buffer.
struct FrameReader {
    stream: TcpStream,
    mode: ReadMode,
    /// Current bound on one wait for bytes (handshake, then idle timeout).
    wait: Option<Duration>,
    in_handshake: bool,
    max_frame: usize,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    recv_ns: u64,
}

const INITIAL_BUFFER: usize = 64 * 1024;
/// Empty busy-poll reads between two looks at the clock for the idle bound.
const SPINS_PER_CLOCK_CHECK: u32 = 64;

impl FrameReader {
    /// Where the next frame's payload is in `buf`; None when the server closed at a frame
    /// boundary. (A range, not a slice, so the caller can still read `recv_ns`.)
    fn next_frame(&mut self) -> Result<Option<Range<usize>>, TcpError> {
        let len = loop {
            let have = self.end - self.start;
            let need = if have >= 4 {
                let b = &self.buf[self.start..self.start + 4];
                let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
                if len > self.max_frame {
                    return Err(TcpError::FrameTooLong {
                        len,
                        max: self.max_frame,
                    });
                }
                if have - 4 >= len {
                    break len;
                }
                4 + len
            } else {
                4
            };
            if self.fill(need)? == 0 {
                return match (have, self.in_handshake) {
                    (0, false) => Ok(None),
                    (0, true) => Err(TcpError::ClosedInHandshake),
                    _ => Err(TcpError::ClosedMidFrame { have, need }),
                };
            }
        };
        let at = self.start + 4;
        self.start = at + len;
        Ok(Some(at..at + len))
    }

    /// Reads once into the buffer, first making room for `need` bytes from `start`; 0 at EOF.
    fn fill(&mut self, need: usize) -> Result<usize, TcpError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.start < need || self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < need {
            // `need` is at most max_frame + 4: checked against the length prefix.
            self.buf
                .resize(need.max(self.buf.len() * 2).min(self.max_frame + 4), 0);
        }
        let n = self.read_some()?;
        self.end += n;
        Ok(n)
    }

    fn read_some(&mut self) -> Result<usize, TcpError> {
        let deadline = match self.mode {
            ReadMode::BusyPoll | ReadMode::BusyPollYield => self.wait.map(|w| Instant::now() + w),
            ReadMode::Block => None,
        };
        let mut spins = 0u32;
        loop {
            match self.stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.recv_ns = mono_ns();
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    if self.mode == ReadMode::Block {
                        return Err(self.timed_out());
                    }
                    spins = spins.wrapping_add(1);
                    if spins.is_multiple_of(SPINS_PER_CLOCK_CHECK)
                        && deadline.is_some_and(|d| Instant::now() >= d)
                    {
                        return Err(self.timed_out());
                    }
                    if self.mode == ReadMode::BusyPollYield {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
                Err(e) => return Err(TcpError::Io(e)),
            }
        }
    }

    fn timed_out(&self) -> TcpError {
        let w = self.wait.unwrap_or_default();
        if self.in_handshake {
            TcpError::HandshakeTimeout(w)
        } else {
            TcpError::Idle(w)
        }
    }

    fn set_wait(&mut self, wait: Option<Duration>) -> Result<(), TcpError> {
        self.wait = wait;
        if self.mode == ReadMode::Block {
            self.stream.set_read_timeout(wait)?;
        }
        Ok(())
    }
}

enum Dec {
    V1(v1::Decoder),
    V2(v2::Decoder),
}

/// A connection to a perp-signal TCP fan-out, decoding as it reads. One connection: after an
/// error or the end of the stream, connect again (a new header starts a new decoder state).
pub struct TcpConsumer {
    io: FrameReader,
    dec: Dec,
    frames: u64,
    header_recv_ns: u64,
}

impl TcpConsumer {
    /// Connects with the defaults of [`Options::new`] and completes the handshake.
    pub fn connect(addr: impl ToSocketAddrs, mode: ReadMode) -> Result<Self, TcpError> {
        Self::connect_with(addr, Options::new(mode))
    }

    /// Connects (TCP_NODELAY), reads `START` and the header, and is then ready for [`next`](Self::next).
    pub fn connect_with(addr: impl ToSocketAddrs, opts: Options) -> Result<Self, TcpError> {
        if opts.handshake_timeout.is_zero() || opts.idle_timeout.is_some_and(|d| d.is_zero()) {
            return Err(TcpError::InvalidArg(
                "timeouts must be longer than zero (no idle bound: idle_timeout None)".into(),
            ));
        }
        if opts.max_frame == 0 || opts.max_frame > MAX_FRAME {
            return Err(TcpError::InvalidArg(format!(
                "max_frame {} must be 1..{MAX_FRAME}",
                opts.max_frame
            )));
        }
        let stream = connect_any(addr, opts.handshake_timeout)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(opts.mode.polls())?;
        let mut io = FrameReader {
            stream,
            mode: opts.mode,
            wait: None,
            in_handshake: true,
            max_frame: opts.max_frame,
            buf: vec![0; INITIAL_BUFFER.min(opts.max_frame + 4)],
            start: 0,
            end: 0,
            recv_ns: 0,
        };
        io.set_wait(Some(opts.handshake_timeout))?;
        let first = io.next_frame()?.ok_or(TcpError::ClosedInHandshake)?;
        let first = &io.buf[first];
        if first != START {
            if let Some(reason) = first.strip_prefix(REFUSAL_PREFIX) {
                return Err(TcpError::Refused(String::from_utf8_lossy(reason).into_owned()));
            }
            let shown = &first[..first.len().min(40)];
            return Err(TcpError::NotStart(String::from_utf8_lossy(shown).into_owned()));
        }
        let header = io.next_frame()?.ok_or(TcpError::ClosedInHandshake)?;
        let header = &io.buf[header];
        let dec = match wire::detect(header).map_err(TcpError::Header)? {
            Wire::V1 => Dec::V1(v1::Decoder::from_header(header, None).map_err(TcpError::Header)?),
            Wire::V2 => Dec::V2(v2::Decoder::from_header(header).map_err(TcpError::Header)?),
        };
        let header_recv_ns = io.recv_ns;
        io.in_handshake = false;
        io.set_wait(opts.idle_timeout)?;
        Ok(TcpConsumer {
            io,
            dec,
            frames: 0,
            header_recv_ns,
        })
    }

    pub fn wire(&self) -> Wire {
        match self.dec {
            Dec::V1(_) => Wire::V1,
            Dec::V2(_) => Wire::V2,
        }
    }

    pub fn read_mode(&self) -> ReadMode {
        self.io.mode
    }

    /// Symbols of the header, in asset-index order.
    pub fn symbols(&self) -> Vec<&str> {
        (0..self.asset_count()).filter_map(|i| self.symbol(i)).collect()
    }

    pub fn asset_count(&self) -> usize {
        match &self.dec {
            Dec::V1(d) => d.symbols().len(),
            Dec::V2(d) => d.state().assets.len(),
        }
    }

    pub fn symbol(&self, asset: usize) -> Option<&str> {
        match &self.dec {
            Dec::V1(d) => d.symbols().get(asset).map(String::as_str),
            Dec::V2(d) => d.state().assets.get(asset).map(|a| a.symbol.as_str()),
        }
    }

    /// Frames received after the header so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// [`mono_ns`] of the read that completed the header.
    pub fn header_recv_ns(&self) -> u64 {
        self.header_recv_ns
    }

    /// The socket (to shut it down from the consumer's side, or read its options).
    pub fn socket(&self) -> &TcpStream {
        &self.io.stream
    }

    /// Waits for the next frame (as the read mode says) and decodes it. `Ok(None)`: the server
    /// closed the connection cleanly between frames. After an error the connection is unusable.
    // Not `Iterator::next`: each message borrows this consumer's buffer and decoder (a lending
    // iterator), which is what spares an allocation per message.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Received<'_>>, TcpError> {
        let Some(at) = self.io.next_frame()? else {
            return Ok(None);
        };
        let payload = &self.io.buf[at];
        let index = self.frames;
        self.frames += 1;
        let recv_ns = self.io.recv_ns;
        let bad = |source| TcpError::Decode { index, source };
        let base = Received {
            index,
            recv_ns,
            stream_loss: None,
            asset_loss: None,
            message: None,
        };
        match &mut self.dec {
            Dec::V1(d) => {
                let t = d.decode(payload).map_err(bad)?;
                let d: &v1::Decoder = d;
                Ok(Some(Received {
                    message: Some(Message::Trade(Trade {
                        wire: Wire::V1,
                        asset: t.asset,
                        symbol: d.symbols().get(t.asset).map_or("", String::as_str),
                        maker: t.maker,
                        time: t.time,
                        price: t.price,
                        price_scale: v1::SCALE,
                        qty: t.qty,
                        qty_scale: v1::SCALE,
                        trade_id: None,
                        kind: None,
                        seq: None,
                        asset_seq: None,
                    })),
                    ..base
                }))
            }
            Dec::V2(d) => {
                let got = d.decode(payload).map_err(bad)?;
                let (stream_loss, asset_loss) = (got.stream_loss, got.asset_loss);
                // The trade's type borrows the decoder mutably: convert without it, end that
                // borrow, then name the symbol and type from the asset's state (which now holds
                // this trade's type).
                let mut message = got.message.map(unnamed);
                let assets = &d.state().assets;
                let symbol = |i: usize| assets.get(i).map_or("", |a| a.symbol.as_str());
                match &mut message {
                    Some(Message::Trade(t)) => {
                        t.symbol = symbol(t.asset);
                        t.kind = assets.get(t.asset).map(|a| a.kind.as_slice());
                    }
                    Some(Message::Gap { symbol: s, asset, .. }) => *s = symbol(*asset),
                    _ => {}
                }
                Ok(Some(Received {
                    stream_loss,
                    asset_loss,
                    message,
                    ..base
                }))
            }
        }
    }
}

/// A v2 message in this module's shape, without its borrow of the decoder: symbol empty, type
/// None (the caller names them).
fn unnamed(m: v2::Message<'_>) -> Message<'static> {
    match m {
        v2::Message::Trade(t) => Message::Trade(Trade {
            wire: Wire::V2,
            asset: t.asset,
            symbol: "",
            maker: t.maker,
            time: t.time,
            price: t.price,
            price_scale: t.price_scale,
            qty: t.qty,
            qty_scale: t.qty_scale,
            trade_id: Some(t.trade_id),
            kind: None,
            seq: Some(t.seq),
            asset_seq: Some(t.asset_seq),
        }),
        v2::Message::Heartbeat { seq, time } => Message::Heartbeat { seq, time },
        v2::Message::Gap {
            seq,
            asset,
            asset_seq,
            last_id,
            next_id,
            reason,
        } => Message::Gap {
            symbol: "",
            asset,
            seq,
            asset_seq,
            last_id,
            next_id,
            reason,
        },
        v2::Message::Snapshot { seq } => Message::Snapshot { seq },
    }
}

/// Tries each address the name resolves to, each bounded by `timeout`.
fn connect_any(addr: impl ToSocketAddrs, timeout: Duration) -> Result<TcpStream, TcpError> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| TcpError::Connect {
            addr: "the given address".into(),
            source: e,
        })?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "the address resolved to nothing");
    for a in &addrs {
        match TcpStream::connect_timeout(a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    let shown = addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ");
    Err(TcpError::Connect {
        addr: if shown.is_empty() {
            "the given address".into()
        } else {
            shown
        },
        source: last,
    })
}

#[cfg(test)]
mod tests;

//! Columnar decode output for high-rate consumers: decoded trades as parallel numeric columns
//! (prices and quantities as exact integer mantissas with their scale, never floats), with the
//! rare non-trade messages (gaps, losses, heartbeats, snapshots) as events that name the trade row
//! they come before. A consumer then touches a handful of numbers per trade instead of building an
//! object with decimal strings; the strings are made only for rows it asks about.
//!
//! Everything is f64 because that is what a JS consumer reads without conversion. Integers up to
//! 2^53 are exact in an f64; a price or quantity mantissa above that (never seen on a real
//! exchange, but the wire allows it) is written as NaN and its decimal string is carried as a
//! [`Event::WIDE`] event instead, so no value is ever silently rounded.
use crate::decimal::{write_fixed, write_fixed_signed, write_trimmed};
use crate::wire::{v1, v2};

/// Column indices, in the order [`Columns::write_to`] lays them out.
pub mod col {
    pub const ASSET: usize = 0;
    /// v2 trade id; -1 in v1.
    pub const TRADE_ID: usize = 1;
    pub const TIME: usize = 2;
    pub const PRICE: usize = 3;
    pub const PRICE_SCALE: usize = 4;
    pub const QTY: usize = 5;
    pub const QTY_SCALE: usize = 6;
    /// 1 when the buyer was the maker.
    pub const MAKER: usize = 7;
    /// v2 stream sequence of the frame; -1 in v1.
    pub const SEQ: usize = 8;
    /// v2 asset sequence of the frame; -1 in v1.
    pub const ASSET_SEQ: usize = 9;
    /// v2: index into the decoder's list of trade types (`X`), announced by a TYPE event when new;
    /// -1 in v1.
    pub const TYPE: usize = 10;
    pub const COUNT: usize = 11;
}

/// Event kinds and layout: [`Event::SLOTS`] f64 per event: kind, row, then kind-specific fields.
pub struct Event;
impl Event {
    pub const SLOTS: usize = 8;
    /// asset, last id, next id, seq, reason (0 jump, 1 reconnect).
    pub const GAP: f64 = 2.0;
    /// time, seq.
    pub const HEARTBEAT: f64 = 1.0;
    /// seq; the snapshot's assets are the next text entry (JSON).
    pub const SNAPSHOT: f64 = 3.0;
    /// asset (-1: the stream), missing.
    pub const LOST: f64 = 4.0;
    /// column (PRICE or QTY) of `row` that is NaN; its decimal string is the next text entry.
    pub const WIDE: f64 = 5.0;
    /// a trade type code first seen at `row`; its name is the next text entry.
    pub const TYPE: f64 = 6.0;
}

/// Largest integer every f64 holds exactly.
const EXACT: u64 = 1 << 53;

#[derive(Debug, Default)]
pub struct Columns {
    cols: [Vec<f64>; col::COUNT],
    events: Vec<f64>,
    /// Text of SNAPSHOT, WIDE and TYPE events, in event order, each ended by '\n'.
    pub text: Vec<u8>,
    /// Trade types seen so far (codes are positions); kept across batches by the decoder.
    types: Vec<Vec<u8>>,
    last_type: usize,
}

impl Columns {
    pub fn new() -> Self {
        Self::default()
    }

    /// Trades in the current batch.
    pub fn len(&self) -> usize {
        self.cols[0].len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn events(&self) -> &[f64] {
        &self.events
    }

    pub fn column(&self, c: usize) -> &[f64] {
        self.cols.get(c).map_or(&[], |v| v.as_slice())
    }

    /// Starts a new batch; the trade-type codes stay valid.
    pub fn clear(&mut self) {
        for c in &mut self.cols {
            c.clear();
        }
        self.events.clear();
        self.text.clear();
    }

    /// Size hint for a batch of `frames` frames.
    pub fn reserve(&mut self, frames: usize) {
        for c in &mut self.cols {
            c.reserve(frames);
        }
    }

    /// Writes the trade count, then each column of that many rows, into `out`; false if too small.
    pub fn write_to(&self, out: &mut [f64]) -> bool {
        let n = self.len();
        let Some((count, rest)) = out.split_first_mut() else {
            return false;
        };
        if rest.len() < n * col::COUNT {
            return false;
        }
        *count = n as f64;
        for (c, chunk) in self.cols.iter().zip(rest.chunks_exact_mut(n.max(1))) {
            chunk[..n].copy_from_slice(c);
        }
        true
    }

    fn event(&mut self, kind: f64, fields: [f64; 6]) {
        self.events.push(kind);
        self.events.push(self.len() as f64);
        self.events.extend_from_slice(&fields);
    }

    /// The mantissa as an exact f64, or NaN plus a WIDE event carrying its decimal string.
    fn mantissa(&mut self, column: usize, v: i64, write: impl FnOnce(&mut Vec<u8>)) -> f64 {
        if v.unsigned_abs() <= EXACT {
            return v as f64;
        }
        self.event(Event::WIDE, [column as f64, 0.0, 0.0, 0.0, 0.0, 0.0]);
        write(&mut self.text);
        self.text.push(b'\n');
        f64::NAN
    }

    fn type_code(&mut self, kind: &[u8]) -> f64 {
        if self
            .types
            .get(self.last_type)
            .is_some_and(|t| t.as_slice() == kind)
        {
            return self.last_type as f64;
        }
        let code = match self.types.iter().position(|t| t.as_slice() == kind) {
            Some(i) => i,
            None => {
                self.types.push(kind.to_vec());
                let code = self.types.len() - 1;
                self.event(Event::TYPE, [code as f64, 0.0, 0.0, 0.0, 0.0, 0.0]);
                self.text.extend_from_slice(kind);
                self.text.push(b'\n');
                code
            }
        };
        self.last_type = code;
        code as f64
    }

    fn row(&mut self, r: [f64; col::COUNT]) {
        for (c, v) in self.cols.iter_mut().zip(r) {
            c.push(v);
        }
    }

    /// A v1 trade: mantissas at [`v1::SCALE`]; strings made from them are trimmed (as v1 decoders
    /// print them), so the per-row scale is what the wire carries, not the exchange's.
    pub fn push_v1(&mut self, t: &v1::Trade) {
        let price = self.mantissa(col::PRICE, t.price, |o| write_trimmed(o, t.price, v1::SCALE));
        let qty = self.mantissa(col::QTY, t.qty.min(i64::MAX as u64) as i64, |o| {
            write_trimmed(o, t.qty as i64, v1::SCALE)
        });
        let s = f64::from(v1::SCALE);
        self.row([
            t.asset as f64,
            -1.0,
            t.time as f64,
            price,
            s,
            qty,
            s,
            f64::from(u8::from(t.maker)),
            -1.0,
            -1.0,
            -1.0,
        ]);
    }

    pub fn push_v2_trade(&mut self, t: &v2::Trade) {
        let price = self.mantissa(col::PRICE, t.price, |o| {
            write_fixed_signed(o, t.price, t.price_scale)
        });
        let qty = if t.qty <= EXACT {
            t.qty as f64
        } else {
            self.mantissa(col::QTY, i64::MAX, |o| write_fixed(o, t.qty, t.qty_scale))
        };
        let kind = self.type_code(t.kind);
        self.row([
            t.asset as f64,
            t.trade_id as f64,
            t.time as f64,
            price,
            f64::from(t.price_scale),
            qty,
            f64::from(t.qty_scale),
            f64::from(u8::from(t.maker)),
            t.seq as f64,
            t.asset_seq as f64,
            kind,
        ]);
    }

    pub fn push_lost(&mut self, l: &v2::Loss) {
        let asset = l.asset.map_or(-1.0, |a| a as f64);
        self.event(Event::LOST, [asset, l.missing as f64, 0.0, 0.0, 0.0, 0.0]);
    }

    pub fn push_heartbeat(&mut self, seq: u64, time: u64) {
        self.event(Event::HEARTBEAT, [time as f64, seq as f64, 0.0, 0.0, 0.0, 0.0]);
    }

    pub fn push_gap(&mut self, asset: usize, last_id: u64, next_id: u64, seq: u64, reason: u8) {
        self.event(
            Event::GAP,
            [
                asset as f64,
                last_id as f64,
                next_id as f64,
                seq as f64,
                f64::from(reason),
                0.0,
            ],
        );
    }

    /// A snapshot event; the caller appends its JSON text ended by '\n'.
    pub fn push_snapshot(&mut self, seq: u64) {
        self.event(Event::SNAPSHOT, [seq as f64, 0.0, 0.0, 0.0, 0.0, 0.0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade(price: i64, qty: u64, kind: &[u8]) -> v2::Trade<'_> {
        v2::Trade {
            asset: 1,
            maker: true,
            time: 1_723_075_200_000,
            price,
            price_scale: 2,
            qty,
            qty_scale: 3,
            trade_id: 5_266_583_935,
            kind,
            seq: 7,
            asset_seq: 3,
        }
    }

    #[test]
    fn columns_hold_exact_mantissas_and_lay_out_by_column() {
        let mut c = Columns::new();
        c.push_v2_trade(&trade(6_180_030, 6, b"MARKET"));
        c.push_v2_trade(&trade(-5, 1, b"MARKET"));
        let mut out = vec![0.0; 1 + 2 * col::COUNT];
        assert!(c.write_to(&mut out));
        assert_eq!(out[0], 2.0);
        let column = |k: usize| &out[1 + k * 2..1 + k * 2 + 2];
        assert_eq!(column(col::PRICE), &[6_180_030.0, -5.0]);
        assert_eq!(column(col::QTY_SCALE), &[3.0, 3.0]);
        assert_eq!(column(col::TRADE_ID), &[5_266_583_935.0; 2]);
        assert_eq!(column(col::TYPE), &[0.0, 0.0]);
        // One TYPE event, before row 0, naming the type.
        assert_eq!(&c.events()[..2], &[Event::TYPE, 0.0]);
        assert_eq!(c.text, b"MARKET\n");
        assert!(!c.write_to(&mut out[..10]));
    }

    #[test]
    fn mantissas_past_2_pow_53_are_nan_with_their_exact_string() {
        let mut c = Columns::new();
        c.push_v2_trade(&trade(1 << 60, 1 << 55, b"X"));
        assert!(c.column(col::PRICE)[0].is_nan());
        assert!(c.column(col::QTY)[0].is_nan());
        let kinds: Vec<f64> = c.events().chunks(Event::SLOTS).map(|e| e[0]).collect();
        assert_eq!(kinds, [Event::WIDE, Event::WIDE, Event::TYPE]);
        assert_eq!(
            String::from_utf8_lossy(&c.text),
            "11529215046068469.76\n36028797018963.968\nX\n"
        );
    }

    #[test]
    fn type_codes_persist_across_batches() {
        let mut c = Columns::new();
        c.push_v2_trade(&trade(1, 1, b"MARKET"));
        c.push_v2_trade(&trade(1, 1, b"ADL"));
        c.clear();
        c.push_v2_trade(&trade(1, 1, b"ADL"));
        c.push_v2_trade(&trade(1, 1, b"MARKET"));
        assert_eq!(c.column(col::TYPE), &[1.0, 0.0]);
        assert!(c.events().is_empty());
    }
}

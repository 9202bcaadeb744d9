//! The forwarder's fast path: parse, check and encode a run of raw exchange frames in one pass,
//! until the first frame that is not *regular*. A regular frame is a well-formed trade of a known,
//! not-blocked asset whose id is exactly the asset's last id + 1. Everything else (first trade of an
//! asset, duplicate, gap, malformed or other frames) stops the run, so the caller's slow path can
//! handle that one frame with its full rules and then resume here. The per-asset last ids are the
//! caller's own state (shared memory with the TypeScript source), so the two paths cannot disagree.
use crate::error::CodecError;
use crate::symbol_index::SymbolIndex;
use crate::trade_json::{self, JsonTrade};
use crate::wire::{v1, v2, TradeRef};

/// What ingest needs of an encoder: one length-prefixed trade frame appended, or nothing on error.
pub trait FrameEncoder {
    fn encode_framed(&mut self, t: &TradeRef, out: &mut Vec<u8>) -> Result<(), CodecError>;
}

impl FrameEncoder for v1::Encoder {
    fn encode_framed(&mut self, t: &TradeRef, out: &mut Vec<u8>) -> Result<(), CodecError> {
        v1::Encoder::encode_framed(self, t, out)
    }
}

impl FrameEncoder for v2::Encoder {
    fn encode_framed(&mut self, t: &TradeRef, out: &mut Vec<u8>) -> Result<(), CodecError> {
        v2::Encoder::encode_framed(self, t, out)
    }
}

/// Raw frames back to back in one buffer; frame `i` ends at `ends[i]` and starts where frame
/// `i - 1` ended (0 for the first).
#[derive(Debug, Clone, Copy)]
pub struct Frames<'a> {
    pub pool: &'a [u8],
    pub ends: &'a [u32],
}

impl<'a> Frames<'a> {
    fn get(&self, i: usize) -> Result<&'a [u8], CodecError> {
        let start = match i {
            0 => 0,
            _ => self.ends.get(i - 1).copied().unwrap_or(u32::MAX) as usize,
        };
        let end = self.ends.get(i).copied().unwrap_or(0) as usize;
        self.pool.get(start..end).ok_or_else(|| {
            CodecError::InvalidArg(format!(
                "frame #{i} spans bytes {start}..{end} of a {}-byte pool: frame ends must rise and stay inside the pool",
                self.pool.len()
            ))
        })
    }
}

/// Per-asset state, in the encoder's asset order.
pub struct Assets<'a> {
    /// Wire order symbols, to map a frame's `s` to its index.
    pub symbols: &'a SymbolIndex,
    /// Last delivered trade id of each asset; NaN when unknown. Advanced for every trade encoded.
    pub last_ids: &'a mut [f64],
    /// Non-zero: the asset's trades take the slow path (backfilling, held trades, reconnect window).
    pub blocked: &'a [u8],
}

/// Why a run stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Every frame was regular.
    End,
    /// The frame at `from + consumed` needs the slow path.
    Irregular(Irregular),
    /// The meta output has no room for another trade.
    MetaFull,
    /// The output has no room for another frame (see `run_within`).
    OutFull,
}

/// What made a frame irregular; the slow path decides what it really is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Irregular {
    /// Not a trade frame as the fast parser reads it (bad JSON, another event, error/result frames,
    /// escaped strings, non-integer times).
    NotATrade,
    /// A trade of a symbol the encoder does not carry.
    UnknownSymbol,
    /// The asset is blocked by the caller.
    Blocked,
    /// The asset's last id is unknown (its first trade).
    FirstTrade,
    /// Duplicate or gap: the id is not last id + 1.
    OutOfSequence,
    /// The encoder refused the trade (e.g. a bad decimal); nothing of it was written.
    EncodeFailed,
}

impl Irregular {
    /// Every kind, in code order (code = position + 1).
    pub const ALL: [Irregular; 6] = [
        Irregular::NotATrade,
        Irregular::UnknownSymbol,
        Irregular::Blocked,
        Irregular::FirstTrade,
        Irregular::OutOfSequence,
        Irregular::EncodeFailed,
    ];

    /// Stable name for the binding's callers (kebab-case).
    pub fn name(self) -> &'static str {
        match self {
            Irregular::NotATrade => "not-a-trade",
            Irregular::UnknownSymbol => "unknown-symbol",
            Irregular::Blocked => "blocked",
            Irregular::FirstTrade => "first-trade",
            Irregular::OutOfSequence => "out-of-sequence",
            Irregular::EncodeFailed => "encode-failed",
        }
    }

    /// Stable small number for the binding.
    pub fn code(self) -> u8 {
        match self {
            Irregular::NotATrade => 1,
            Irregular::UnknownSymbol => 2,
            Irregular::Blocked => 3,
            Irregular::FirstTrade => 4,
            Irregular::OutOfSequence => 5,
            Irregular::EncodeFailed => 6,
        }
    }
}

/// Result of one call: frames consumed (each one trade, framed in `out` and described in `meta`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub consumed: usize,
    pub stop: Stop,
}

/// f64 slots per trade in `meta`: asset index, trade id, trade time (ms).
pub const META_SLOTS: usize = 3;

/// Bytes a trade frame's encoding (length prefix included) can exceed its JSON text by: the
/// encoding's fixed part (prefix, header, asset, three deltas, scales, id: at most ~55 bytes) plus
/// the type, which the JSON also holds. `run_within` keeps this much room per frame.
pub const FRAME_SLACK: usize = 128;

/// Encodes frames `from..` while they are regular. Appends one framed message per consumed frame to
/// `out` and `(asset, tradeId, tradeTime)` to `meta`, and advances the assets' last ids. Errors
/// only for inconsistent arguments (then nothing is written, no state changes).
pub fn run<E: FrameEncoder>(
    enc: &mut E,
    frames: &Frames,
    from: usize,
    assets: &mut Assets,
    out: &mut Vec<u8>,
    meta: &mut [f64],
) -> Result<Run, CodecError> {
    run_within(enc, frames, from, assets, out, usize::MAX, meta)
}

/// `run`, with `out` kept at most `room` bytes long: before a frame is encoded, the run stops
/// (`Stop::OutFull`) unless `out` has room for the frame's length plus `FRAME_SLACK`, so a caller
/// copying `out` into a fixed buffer never has to undo an encode.
pub fn run_within<E: FrameEncoder>(
    enc: &mut E,
    frames: &Frames,
    from: usize,
    assets: &mut Assets,
    out: &mut Vec<u8>,
    room: usize,
    meta: &mut [f64],
) -> Result<Run, CodecError> {
    check_args(frames, from, assets)?;
    let mut consumed = 0;
    let stop = loop {
        let i = from + consumed;
        if i == frames.ends.len() {
            break Stop::End;
        }
        let Some(slot) = meta.get_mut(META_SLOTS * consumed..META_SLOTS * (consumed + 1)) else {
            break Stop::MetaFull;
        };
        let frame = frames.get(i)?;
        if out.len().saturating_add(frame.len()).saturating_add(FRAME_SLACK) > room {
            break Stop::OutFull;
        }
        let (t, asset) = match regular(frame, assets) {
            Ok(r) => r,
            Err(why) => break Stop::Irregular(why),
        };
        if enc.encode_framed(&t.to_ref(asset), out).is_err() {
            break Stop::Irregular(Irregular::EncodeFailed);
        }
        let id = t.trade_id as f64;
        slot.copy_from_slice(&[asset as f64, id, t.trade_time as f64]);
        if let Some(last) = assets.last_ids.get_mut(asset) {
            *last = id;
        }
        consumed += 1;
    };
    Ok(Run { consumed, stop })
}

/// The per-asset arrays of a run (`last_ids`, `blocked` lengths) fit `assets` assets.
pub fn check_asset_arrays(assets: usize, last_ids: usize, blocked: usize) -> Result<(), CodecError> {
    if last_ids != assets || blocked != assets {
        return Err(CodecError::InvalidArg(format!(
            "last ids ({last_ids}) and blocked flags ({blocked}) must have one entry per asset ({assets})"
        )));
    }
    Ok(())
}

fn check_args(frames: &Frames, from: usize, assets: &Assets) -> Result<(), CodecError> {
    check_asset_arrays(assets.symbols.len(), assets.last_ids.len(), assets.blocked.len())?;
    if from > frames.ends.len() {
        return Err(CodecError::InvalidArg(format!(
            "start frame {from} is past the {} frames given",
            frames.ends.len()
        )));
    }
    // Checked up front so a bad boundary cannot leave a run half done.
    let mut prev = if from == 0 { 0 } else { frames.ends[from - 1] };
    for (k, &e) in frames.ends[from..].iter().enumerate() {
        if e < prev || e as usize > frames.pool.len() {
            return Err(CodecError::InvalidArg(format!(
                "frame #{} ends at byte {e}, before its start {prev} or past the {}-byte pool",
                from + k,
                frames.pool.len()
            )));
        }
        prev = e;
    }
    Ok(())
}

/// The trade and its asset index if the frame is regular, else why not.
fn regular<'f>(frame: &'f [u8], assets: &Assets) -> Result<(JsonTrade<'f>, usize), Irregular> {
    let t = trade_json::parse_plain_trade(frame).map_err(|_| Irregular::NotATrade)?;
    let asset = assets.symbols.find(t.symbol).ok_or(Irregular::UnknownSymbol)?;
    if assets.blocked.get(asset).is_none_or(|&b| b != 0) {
        return Err(Irregular::Blocked);
    }
    let last = assets.last_ids.get(asset).copied().unwrap_or(f64::NAN);
    if last.is_nan() {
        return Err(Irregular::FirstTrade);
    }
    if t.trade_id as f64 != last + 1.0 {
        return Err(Irregular::OutOfSequence);
    }
    Ok((t, asset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::AssetSpec;

    fn frame(sym: &str, id: u64, price: &str) -> String {
        format!(
            r#"{{"stream":"{l}@trade","data":{{"e":"trade","E":1723161256322,"T":{t},"s":"{sym}","t":{id},"p":"{price}","q":"0.006","X":"MARKET","m":false}}}}"#,
            l = sym.to_lowercase(),
            t = 1723161256000 + id % 1000,
        )
    }

    #[test]
    fn irregular_codes_follow_all_and_names_are_distinct() {
        for (i, k) in Irregular::ALL.iter().enumerate() {
            assert_eq!(usize::from(k.code()), i + 1, "{k:?}");
        }
        let mut names: Vec<_> = Irregular::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Irregular::ALL.len());
    }

    fn enc() -> v2::Encoder {
        let spec = |s: &str| AssetSpec {
            symbol: s.into(),
            ref_price: "61800.30".into(),
            ref_qty: "0.001".into(),
            price_scale: Some(2),
            qty_scale: Some(3),
        };
        v2::Encoder::new(&[spec("BTCUSDT"), spec("ETHUSDT")], 1723161256000).unwrap()
    }

    struct Batch {
        pool: Vec<u8>,
        ends: Vec<u32>,
    }

    fn batch(frames: &[String]) -> Batch {
        let mut pool = Vec::new();
        let mut ends = Vec::new();
        for f in frames {
            pool.extend_from_slice(f.as_bytes());
            ends.push(pool.len() as u32);
        }
        Batch { pool, ends }
    }

    const SYMS: [&str; 2] = ["BTCUSDT", "ETHUSDT"];

    fn go(
        e: &mut v2::Encoder,
        b: &Batch,
        from: usize,
        last: &mut [f64],
        blocked: &[u8],
    ) -> (Run, Vec<u8>, Vec<f64>) {
        let mut out = Vec::new();
        let mut meta = vec![0.0; 3 * b.ends.len()];
        let mut a = Assets {
            symbols: &SymbolIndex::new(&SYMS),
            last_ids: last,
            blocked,
        };
        let r = run(
            e,
            &Frames {
                pool: &b.pool,
                ends: &b.ends,
            },
            from,
            &mut a,
            &mut out,
            &mut meta,
        )
        .unwrap();
        meta.truncate(3 * r.consumed);
        (r, out, meta)
    }

    #[test]
    fn encodes_a_regular_run_like_the_encoder_and_advances_last_ids() {
        let fs: Vec<String> = (0..10)
            .map(|k| {
                if k % 2 == 0 {
                    frame("BTCUSDT", 101 + k / 2, "61800.40")
                } else {
                    frame("ETHUSDT", 7 + k / 2, "2650.12")
                }
            })
            .collect();
        let b = batch(&fs);
        let mut last = [100.0, 6.0];
        let mut e = enc();
        let (r, out, meta) = go(&mut e, &b, 0, &mut last, &[0, 0]);
        assert_eq!(
            r,
            Run {
                consumed: 10,
                stop: Stop::End
            }
        );
        assert_eq!(last, [105.0, 11.0]);
        assert_eq!(
            &meta[..6],
            &[0.0, 101.0, 1723161256101.0, 1.0, 7.0, 1723161256007.0]
        );
        // The same bytes as parsing each frame and encoding it.
        let mut e2 = enc();
        let mut want = Vec::new();
        for f in &fs {
            let t = trade_json::parse_trade(f.as_bytes()).unwrap();
            let asset = SYMS.iter().position(|s| s.as_bytes() == t.symbol).unwrap();
            e2.encode_framed(&t.to_ref(asset), &mut want).unwrap();
        }
        assert_eq!(out, want);
    }

    #[test]
    fn stops_at_each_kind_of_irregular_frame_without_touching_it() {
        let cases: Vec<(String, [f64; 2], [u8; 2], Irregular)> = vec![
            (
                frame("BTCUSDT", 103, "1.0"),
                [101.0, 6.0],
                [0, 0],
                Irregular::OutOfSequence,
            ), // gap
            (
                frame("BTCUSDT", 100, "1.0"),
                [101.0, 6.0],
                [0, 0],
                Irregular::OutOfSequence,
            ), // duplicate
            (
                frame("BTCUSDT", 101, "1.0"),
                [101.0, 6.0],
                [0, 0],
                Irregular::OutOfSequence,
            ), // same id
            (
                frame("BTCUSDT", 102, "1.0"),
                [f64::NAN, 6.0],
                [0, 0],
                Irregular::FirstTrade,
            ),
            (
                frame("BTCUSDT", 102, "1.0"),
                [101.0, 6.0],
                [1, 0],
                Irregular::Blocked,
            ),
            (
                frame("SOLUSDT", 102, "1.0"),
                [101.0, 6.0],
                [0, 0],
                Irregular::UnknownSymbol,
            ),
            (
                frame("BTCUSDT", 102, "1.x"),
                [101.0, 6.0],
                [0, 0],
                Irregular::EncodeFailed,
            ),
            ("{not json".into(), [101.0, 6.0], [0, 0], Irregular::NotATrade),
            (
                r#"{"result":null,"id":1}"#.into(),
                [101.0, 6.0],
                [0, 0],
                Irregular::NotATrade,
            ),
            (
                r#"{"stream":"x","data":{"e":"aggTrade"}}"#.into(),
                [101.0, 6.0],
                [0, 0],
                Irregular::NotATrade,
            ),
        ];
        for (f, last0, blocked, why) in cases {
            // One regular ETH frame first, then the case, then another regular ETH frame.
            let b = batch(&[
                frame("ETHUSDT", 7, "2650.12"),
                f.clone(),
                frame("ETHUSDT", 8, "2650.13"),
            ]);
            let mut last = last0;
            let mut e = enc();
            let (r, out, _) = go(&mut e, &b, 0, &mut last, &blocked);
            assert_eq!(
                r,
                Run {
                    consumed: 1,
                    stop: Stop::Irregular(why)
                },
                "{f}"
            );
            assert_eq!(last[0].to_bits(), last0[0].to_bits(), "{f}");
            assert_eq!(last[1], 7.0);
            // Exactly one frame was written.
            let len = u32::from_le_bytes(out[..4].try_into().unwrap()) as usize;
            assert_eq!(out.len(), 4 + len, "{f}");
            // Resuming after the irregular frame continues the run.
            let (r2, _, meta) = go(&mut e, &b, 2, &mut last, &blocked);
            assert_eq!(
                r2,
                Run {
                    consumed: 1,
                    stop: Stop::End
                }
            );
            assert_eq!(meta[1], 8.0);
        }
    }

    #[test]
    fn frames_the_js_source_reads_differently_are_not_regular() {
        // JSON.parse-based rules: an error or result/id key wins over data; data that is not an
        // object makes the frame malformed. The fast path must leave those to the slow path.
        let data = r#"{"e":"trade","E":1,"T":2,"s":"BTCUSDT","t":102,"p":"1.0","q":"1","m":true}"#;
        for f in [
            format!(r#"{{"data":{data},"error":{{"code":1,"msg":"x"}}}}"#),
            format!(r#"{{"data":{data},"error":null}}"#),
            format!(r#"{{"result":null,"data":{data},"id":3}}"#),
            format!(r#"{{"data":{data},"data":5}}"#),
            r#"{"data":null,"e":"trade","E":1,"T":2,"s":"BTCUSDT","t":102,"p":"1.0","q":"1","m":true}"#
                .to_string(),
            format!(
                r#"{{"d\u0061ta":{data},"e":"trade","E":1,"T":2,"s":"BTCUSDT","t":102,"p":"1.0","q":"1","m":true}}"#
            ),
            format!(
                r#"{{"data":{}}}"#,
                data.replace(r#""m":true"#, r#""m":true,"\u0074":103"#)
            ),
        ] {
            let b = batch(std::slice::from_ref(&f));
            let mut last = [101.0, 6.0];
            let (r, out, _) = go(&mut enc(), &b, 0, &mut last, &[0, 0]);
            assert_eq!(r.stop, Stop::Irregular(Irregular::NotATrade), "{f}");
            assert!(out.is_empty());
        }
        // A bare payload and unknown keys are regular.
        let b = batch(&[
            data.to_string(),
            format!(r#"{{"stream":"s","data":{data},"x":[1,{{}}]}}"#).replace("102", "103"),
        ]);
        let mut last = [101.0, 6.0];
        let (r, _, _) = go(&mut enc(), &b, 0, &mut last, &[0, 0]);
        assert_eq!(
            r,
            Run {
                consumed: 2,
                stop: Stop::End
            }
        );
    }

    #[test]
    fn bad_arguments_are_typed_errors_and_change_nothing() {
        let b = batch(&[frame("BTCUSDT", 102, "1.0")]);
        let mut e = enc();
        let mut out = Vec::new();
        let mut meta = [0.0; 3];
        let mut last = [101.0, 6.0];
        let mut call = |pool: &[u8], ends: &[u32], from: usize, last: &mut [f64], blocked: &[u8]| {
            let mut a = Assets {
                symbols: &SymbolIndex::new(&SYMS),
                last_ids: last,
                blocked,
            };
            run(&mut e, &Frames { pool, ends }, from, &mut a, &mut out, &mut meta).map_err(|e| e.code())
        };
        assert_eq!(
            call(&b.pool, &[b.pool.len() as u32 + 1], 0, &mut last, &[0, 0]),
            Err("E_INVALID_ARG")
        );
        assert_eq!(
            call(&b.pool, &[5, 3], 0, &mut last, &[0, 0]),
            Err("E_INVALID_ARG")
        );
        assert_eq!(
            call(&b.pool, &b.ends, 2, &mut last, &[0, 0]),
            Err("E_INVALID_ARG")
        );
        assert_eq!(
            call(&b.pool, &b.ends, 0, &mut last[..1], &[0, 0]),
            Err("E_INVALID_ARG")
        );
        assert_eq!(call(&b.pool, &b.ends, 0, &mut last, &[0]), Err("E_INVALID_ARG"));
        // An empty run is not an error.
        assert_eq!(
            call(&b.pool, &b.ends, 1, &mut last, &[0, 0]),
            Ok(Run {
                consumed: 0,
                stop: Stop::End
            })
        );
        assert_eq!(last, [101.0, 6.0]);
        assert!(out.is_empty());
    }

    #[test]
    fn stops_before_a_frame_that_may_not_fit_and_resumes_there() {
        let b = batch(&[frame("BTCUSDT", 102, "1.0"), frame("BTCUSDT", 103, "1.0")]);
        let mut e = enc();
        let mut out = Vec::new();
        let mut meta = [0.0; 6];
        let mut last = [101.0, 6.0];
        let mut a = Assets {
            symbols: &SymbolIndex::new(&SYMS),
            last_ids: &mut last,
            blocked: &[0, 0],
        };
        let frames = Frames {
            pool: &b.pool,
            ends: &b.ends,
        };
        // Room for the first frame's bound only.
        let room = b.ends[0] as usize + FRAME_SLACK;
        let r = run_within(&mut e, &frames, 0, &mut a, &mut out, room, &mut meta).unwrap();
        assert_eq!(
            r,
            Run {
                consumed: 1,
                stop: Stop::OutFull
            }
        );
        assert_eq!(a.last_ids, &[102.0, 6.0]);
        let first = out.len();
        out.clear();
        let r = run_within(&mut e, &frames, 1, &mut a, &mut out, room, &mut meta).unwrap();
        assert_eq!(r.stop, Stop::End);
        assert_eq!(r.consumed, 1);
        assert!(first > 0 && !out.is_empty());
    }

    #[test]
    fn an_encoded_frame_stays_within_its_json_length_plus_the_slack() {
        // Large ids, times and decimals and the longest literal type (32 characters).
        let big = r#"{"e":"trade","E":1,"T":4102444800000,"s":"BTCUSDT","t":9007199254740991,"p":"9999999.99999999","q":"9999999.99999999","X":"ABCDEFGHIJKLMNOPQRSTUVWXYZ_01234","m":true}"#;
        let small = r#"{"e":"trade","E":1,"T":0,"s":"BTCUSDT","t":9007199254740990,"p":"0.00000001","q":"0.00000001","X":"Y","m":false}"#;
        for (f, last) in [(big, 9007199254740990.0), (small, 9007199254740989.0)] {
            let b = batch(&[f.to_string()]);
            let mut last = [last, 6.0];
            let (r, out, _) = go(&mut enc(), &b, 0, &mut last, &[0, 0]);
            assert_eq!(r.consumed, 1, "{f} {r:?}");
            assert!(
                out.len() <= f.len() + FRAME_SLACK,
                "{} > {} + slack",
                out.len(),
                f.len()
            );
        }
    }

    #[test]
    fn stops_when_meta_is_full() {
        let b = batch(&[frame("BTCUSDT", 102, "1.0"), frame("BTCUSDT", 103, "1.0")]);
        let mut e = enc();
        let mut out = Vec::new();
        let mut meta = [0.0; 3];
        let mut last = [101.0, 6.0];
        let mut a = Assets {
            symbols: &SymbolIndex::new(&SYMS),
            last_ids: &mut last,
            blocked: &[0, 0],
        };
        let r = run(
            &mut e,
            &Frames {
                pool: &b.pool,
                ends: &b.ends,
            },
            0,
            &mut a,
            &mut out,
            &mut meta,
        )
        .unwrap();
        assert_eq!(
            r,
            Run {
                consumed: 1,
                stop: Stop::MetaFull
            }
        );
        assert_eq!(last, [102.0, 6.0]);
    }
}

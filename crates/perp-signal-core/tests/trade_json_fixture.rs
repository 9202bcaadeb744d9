//! Every frame of the real BTCUSDT capture read by `trade_json::parse_trade` gives exactly what a
//! general JSON parser (serde_json) reads from it; every truncation of every 97th frame is a typed
//! error. The capture lives beside the repo (never copied in): env PERP_SIGNAL_SHARED, else
//! `<repoRoot>/../shared`, else /work/shared.
use std::path::PathBuf;
use std::process::Command;

use perp_signal_core::trade_json::{lines, parse_trade};
use serde_json::Value;

const NAME: &str = "binance-usdm-btcusdt-trades-20240808.txt.gz";

fn fixture() -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..");
    let candidates = [
        std::env::var("PERP_SIGNAL_SHARED").ok().map(PathBuf::from),
        Some(root.join("..").join("shared")),
        Some(PathBuf::from("/work/shared")),
    ];
    let file = candidates
        .iter()
        .flatten()
        .map(|d| d.join("fixtures").join(NAME))
        .find(|f| f.exists())
        .unwrap_or_else(|| panic!("{NAME} not found beside the repo; set PERP_SIGNAL_SHARED"));
    // No gzip crate in the dependency tree for one test: the system's gzip reads it.
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&file)
        .output()
        .expect("gzip runs");
    assert!(out.status.success(), "gzip -dc {file:?} failed");
    String::from_utf8(out.stdout).expect("fixture is UTF-8")
}

fn frames(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| &l[l.find(' ').expect("timestamp, space, frame") + 1..])
        .collect()
}

#[test]
fn equals_serde_json_on_every_fixture_frame() {
    let text = fixture();
    let frames = frames(&text);
    assert_eq!(frames.len(), 21313);
    for (i, f) in frames.iter().enumerate() {
        let t = parse_trade(f.as_bytes()).unwrap_or_else(|e| panic!("frame {i}: {e}"));
        let v: Value = serde_json::from_str(f).expect("serde reads the frame");
        let d = &v["data"];
        let s = |k: &str| d[k].as_str().expect("string field").as_bytes();
        assert_eq!(t.symbol, s("s"), "frame {i}");
        assert_eq!(t.price, s("p"), "frame {i}");
        assert_eq!(t.qty, s("q"), "frame {i}");
        assert_eq!(t.kind, s("X"), "frame {i}");
        assert_eq!(Some(t.event_time), d["E"].as_i64(), "frame {i}");
        assert_eq!(Some(t.trade_time), d["T"].as_i64(), "frame {i}");
        assert_eq!(Some(t.trade_id), d["t"].as_u64(), "frame {i}");
        assert_eq!(Some(t.maker), d["m"].as_bool(), "frame {i}");
    }
}

#[test]
fn batch_lines_are_the_frames() {
    let text = fixture();
    let frames = frames(&text);
    let joined = frames[..500].join("\r\n") + "\n\n";
    let got: Vec<&[u8]> = lines(joined.as_bytes()).collect();
    let want: Vec<&[u8]> = frames[..500].iter().map(|f| f.as_bytes()).collect();
    assert_eq!(got, want);
}

#[test]
fn truncated_or_corrupted_frames_are_typed_errors() {
    let text = fixture();
    for f in frames(&text).iter().step_by(97) {
        let b = f.as_bytes();
        for n in 0..b.len() {
            let e = parse_trade(&b[..n]).expect_err("a truncated frame is refused");
            assert!(matches!(e.code(), "E_BAD_JSON" | "E_NOT_A_TRADE"), "{e}");
        }
        // A corrupt byte anywhere: an error or (rarely, e.g. inside a skipped string) a trade,
        // never a panic.
        for n in 0..b.len() {
            let mut c = b.to_vec();
            c[n] = b'}';
            let _ = parse_trade(&c);
        }
    }
}

//! Replays testdata/wire-vectors.json (shared with jest): our encoder must produce every header
//! and payload byte for byte, our decoder must return every trade exactly, and every hostile
//! input must give its typed error.
use perp_signal_core::decimal;
use perp_signal_core::wire::{v1, v2, AssetSpec, TradeRef};
use serde_json::Value;

fn load() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/wire-vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read vectors")).expect("parse")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn assets(v: &Value) -> Vec<AssetSpec> {
    v["assets"]
        .as_array()
        .expect("assets")
        .iter()
        .map(|a| AssetSpec {
            symbol: a["symbol"].as_str().expect("symbol").into(),
            ref_price: a["refPrice"].as_str().expect("refPrice").into(),
            ref_qty: a["refQty"].as_str().expect("refQty").into(),
            price_scale: a["priceScale"].as_u64().map(|s| s as u8),
            qty_scale: a["qtyScale"].as_u64().map(|s| s as u8),
        })
        .collect()
}

fn scaled(s: &str, scale: u8) -> u64 {
    decimal::to_scaled(s.as_bytes(), scale)
        .expect("decimal")
        .expect("fits scale")
}

enum Enc {
    V1(v1::Encoder),
    V2(v2::Encoder),
}

#[test]
fn vectors_encode_and_decode_exactly() {
    let doc = load();
    let vectors = doc["vectors"].as_array().expect("vectors");
    assert!(vectors.len() >= 5);
    for v in vectors {
        let name = v["name"].as_str().expect("name");
        let specs = assets(v);
        let symbols: Vec<&str> = specs.iter().map(|a| a.symbol.as_str()).collect();
        let ref_time = v["refTime"].as_i64().expect("refTime");
        let mut enc = match v["wire"].as_str() {
            Some("v1") => Enc::V1(v1::Encoder::new(&specs, ref_time).expect(name)),
            _ => Enc::V2(v2::Encoder::new(&specs, ref_time).expect(name)),
        };
        let header = match &enc {
            Enc::V1(e) => e.header(),
            Enc::V2(e) => e.header(),
        };
        assert_eq!(
            header,
            hex(v["header"].as_str().expect("header")),
            "{name}: header"
        );
        let mut d1 = matches!(enc, Enc::V1(_)).then(|| v1::Decoder::from_header(&header, None).expect(name));
        let mut d2 = matches!(enc, Enc::V2(_)).then(|| v2::Decoder::from_header(&header).expect(name));
        for (k, op) in v["ops"].as_array().expect("ops").iter().enumerate() {
            let want = hex(op["payload"].as_str().expect("payload"));
            let t = &op["trade"];
            let got = if t.is_object() {
                let asset = symbols
                    .iter()
                    .position(|s| Some(*s) == t["symbol"].as_str())
                    .expect("symbol");
                let tr = TradeRef {
                    asset,
                    time: t["time"].as_i64().expect("time"),
                    trade_id: t["tradeId"].as_u64().expect("id"),
                    price: t["price"].as_str().expect("p").as_bytes(),
                    qty: t["qty"].as_str().expect("q").as_bytes(),
                    maker: t["maker"].as_bool().expect("m"),
                    kind: t["type"].as_str().expect("X").as_bytes(),
                };
                let mut out = Vec::new();
                match &mut enc {
                    Enc::V1(e) => e.encode(&tr, &mut out),
                    Enc::V2(e) => e.encode(&tr, &mut out),
                }
                .expect(name);
                out
            } else {
                let Enc::V2(e) = &mut enc else {
                    panic!("{name}: control frame in v1")
                };
                if let Some(g) = op["gap"].as_object() {
                    let asset = symbols
                        .iter()
                        .position(|s| Some(*s) == g["symbol"].as_str())
                        .expect("symbol");
                    let reason = u8::from(g["reason"].as_str() == Some("reconnect"));
                    e.gap(
                        asset,
                        g["lastId"].as_u64().expect("lastId"),
                        g["nextId"].as_u64().expect("nextId"),
                        reason,
                    )
                    .expect(name)
                } else if let Some(now) = op["heartbeat"].as_u64() {
                    e.heartbeat(now)
                } else {
                    e.snapshot()
                }
            };
            assert_eq!(got, want, "{name}: op {k}");
            if let Some(d) = &mut d1 {
                let tr = d.decode(&want).expect(name);
                assert_eq!(tr.time, t["time"].as_i64().expect("time"));
                assert_eq!(tr.price as u64, scaled(t["price"].as_str().expect("p"), 5));
                assert_eq!(tr.qty, scaled(t["qty"].as_str().expect("q"), 5));
                assert_eq!(tr.maker, t["maker"].as_bool().expect("m"));
            }
            if let Some(d) = &mut d2 {
                let r = d.decode(&want).expect(name);
                assert_eq!((r.stream_loss, r.asset_loss), (None, None), "{name}");
                if let Some(v2::Message::Trade(tr)) = r.message {
                    assert_eq!(tr.time, t["time"].as_i64().expect("time"));
                    assert_eq!(tr.trade_id, t["tradeId"].as_u64().expect("id"));
                    assert_eq!(
                        tr.price as u64,
                        scaled(t["price"].as_str().expect("p"), tr.price_scale)
                    );
                    assert_eq!(tr.qty, scaled(t["qty"].as_str().expect("q"), tr.qty_scale));
                    assert_eq!(tr.kind, t["type"].as_str().expect("X").as_bytes());
                    assert_eq!(tr.maker, t["maker"].as_bool().expect("m"));
                } else {
                    assert!(!t.is_object(), "{name}: trade op decoded as {:?}", r.message);
                }
            }
        }
    }
}

#[test]
fn hostile_vectors_give_their_typed_error() {
    let doc = load();
    let vectors = doc["vectors"].as_array().expect("vectors");
    let header_of = |wire: &str| {
        let v = vectors
            .iter()
            .find(|v| v["wire"].as_str() == Some(wire))
            .expect("vector of wire");
        hex(v["header"].as_str().expect("header"))
    };
    let hostile = doc["hostile"].as_array().expect("hostile");
    assert!(hostile.len() >= 15);
    for h in hostile {
        let name = h["name"].as_str().expect("name");
        let code = h["code"].as_str().expect("code");
        let err = if let Some(head) = h["header"].as_str() {
            let b = hex(head);
            match perp_signal_core::wire::detect(&b) {
                Ok(perp_signal_core::wire::Wire::V1) => v1::Decoder::from_header(&b, None).err(),
                Ok(_) => v2::Decoder::from_header(&b).err(),
                Err(e) => Some(e),
            }
        } else {
            let p = hex(h["payload"].as_str().expect("payload"));
            match h["wire"].as_str() {
                Some("v1") => v1::Decoder::from_header(&header_of("v1"), None)
                    .expect("header")
                    .decode(&p)
                    .err(),
                _ => v2::Decoder::from_header(&header_of("v2"))
                    .expect("header")
                    .decode(&p)
                    .err(),
            }
        };
        assert_eq!(err.map(|e| e.code()), Some(code), "{name}");
    }
}

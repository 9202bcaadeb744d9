//! Reads one Binance trade frame (JSON text) straight from its bytes, so a batch of raw frames can
//! be parsed and encoded in one native call. Accepts what `ts/source/parse.ts` accepts for a trade:
//! a combined-stream frame `{"stream":..,"data":{..}}` or a bare payload (`/ws/<stream>`), unknown
//! keys ignored, the last of duplicate keys winning (as `JSON.parse`). The decimal strings stay
//! borrowed so the encoder sees exactly what the exchange sent.
//!
//! Deliberately narrower than JSON on the fields it keeps: `s`, `p`, `q`, `X` must be strings
//! without escapes (Binance never escapes them) and `E`, `T`, `t` plain integer literals. Anything
//! else is a typed error naming the byte offset; skipped values get a full JSON syntax check.
use crate::error::CodecError;
use crate::wire::TradeRef;

/// Nesting deeper than this in a skipped value is refused rather than recursed into.
const MAX_DEPTH: usize = 32;
/// Largest trade id a JS number holds exactly: ids past it could not match the JS path.
const MAX_SAFE: u64 = (1 << 53) - 1;

/// One trade read from a frame; decimals and names borrowed from the frame's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonTrade<'a> {
    /// `s`, e.g. `BTCUSDT`.
    pub symbol: &'a [u8],
    /// `E`, ms.
    pub event_time: i64,
    /// `T`, ms.
    pub trade_time: i64,
    /// `t`.
    pub trade_id: u64,
    /// `p`, exactly as sent.
    pub price: &'a [u8],
    /// `q`, exactly as sent.
    pub qty: &'a [u8],
    /// `m`.
    pub maker: bool,
    /// `X`; `MARKET` when absent (as the JS source does).
    pub kind: &'a [u8],
}

impl<'a> JsonTrade<'a> {
    /// The encoder's view of this trade as asset `asset`.
    pub fn to_ref(&self, asset: usize) -> TradeRef<'a> {
        TradeRef {
            asset,
            time: self.trade_time,
            trade_id: self.trade_id,
            price: self.price,
            qty: self.qty,
            maker: self.maker,
            kind: self.kind,
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Fields<'a> {
    e: Option<&'a [u8]>,
    big_e: Option<i64>,
    big_t: Option<i64>,
    s: Option<&'a [u8]>,
    t: Option<u64>,
    p: Option<&'a [u8]>,
    q: Option<&'a [u8]>,
    x: Option<&'a [u8]>,
    m: Option<bool>,
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

fn bad(at: usize, what: &str) -> CodecError {
    CodecError::BadJson(format!("{what} at byte {at}"))
}

impl<'a> Cursor<'a> {
    fn ws(&mut self) {
        while let Some(c) = self.b.get(self.i) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Result<u8, CodecError> {
        self.ws();
        self.b
            .get(self.i)
            .copied()
            .ok_or_else(|| bad(self.i, "input ends early"))
    }

    fn expect(&mut self, c: u8) -> Result<(), CodecError> {
        if self.peek()? != c {
            return Err(bad(self.i, &format!("expected '{}'", c as char)));
        }
        self.i += 1;
        Ok(())
    }

    /// A string's raw bytes between the quotes; `Ok(None)` when it holds escapes (validated).
    fn string(&mut self) -> Result<Option<&'a [u8]>, CodecError> {
        self.expect(b'"')?;
        let start = self.i;
        let mut plain = true;
        loop {
            let c = *self
                .b
                .get(self.i)
                .ok_or_else(|| bad(start, "unterminated string"))?;
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(plain.then(|| &self.b[start..self.i - 1]));
                }
                b'\\' => {
                    plain = false;
                    let e = self.b.get(self.i + 1).copied();
                    match e {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 2,
                        Some(b'u') => {
                            let hex = self.b.get(self.i + 2..self.i + 6);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(bad(self.i, "bad \\u escape"));
                            }
                            self.i += 6;
                        }
                        _ => return Err(bad(self.i, "bad escape")),
                    }
                }
                0..=0x1f => return Err(bad(self.i, "control character in string")),
                _ => self.i += 1,
            }
        }
    }

    /// A string the trade needs: escapes are refused (Binance never sends them in these fields).
    fn plain_string(&mut self, key: &str) -> Result<&'a [u8], CodecError> {
        let at = self.i;
        self.string()?
            .ok_or_else(|| bad(at, &format!("\"{key}\" holds an escaped string")))
    }

    /// A JSON number's extent; `(start, end, integer)`.
    fn number(&mut self) -> Result<(usize, usize, bool), CodecError> {
        self.ws();
        let start = self.i;
        let b = self.b;
        let digits = |i: &mut usize| {
            let s = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - s
        };
        let mut i = self.i;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        let n = digits(&mut i);
        if n == 0 || (n > 1 && b[int_start] == b'0') {
            return Err(bad(start, "bad number"));
        }
        let mut integer = true;
        if b.get(i) == Some(&b'.') {
            i += 1;
            integer = false;
            if digits(&mut i) == 0 {
                return Err(bad(start, "bad number"));
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            integer = false;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return Err(bad(start, "bad number"));
            }
        }
        self.i = i;
        Ok((start, i, integer))
    }

    fn int(&mut self, key: &str) -> Result<i64, CodecError> {
        let (s, e, integer) = self.number()?;
        let txt = &self.b[s..e];
        let v = if integer {
            std::str::from_utf8(txt).ok().and_then(|t| t.parse::<i64>().ok())
        } else {
            None
        };
        v.ok_or_else(|| bad(s, &format!("\"{key}\" is not an integer in range")))
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), CodecError> {
        self.ws();
        if self.b.get(self.i..self.i + word.len()) != Some(word) {
            return Err(bad(self.i, "unexpected token"));
        }
        self.i += word.len();
        Ok(())
    }

    fn boolean(&mut self, key: &str) -> Result<bool, CodecError> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|_| true),
            b'f' => self.literal(b"false").map(|_| false),
            _ => Err(bad(self.i, &format!("\"{key}\" is not a boolean"))),
        }
    }

    fn skip_value(&mut self, depth: usize) -> Result<(), CodecError> {
        if depth > MAX_DEPTH {
            return Err(bad(self.i, "nesting too deep"));
        }
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' => self.object(depth + 1, |c, _, d| c.skip_value(d)),
            b'[' => {
                self.i += 1;
                if self.peek()? == b']' {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(bad(self.i, "expected ',' or ']'")),
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(|_| ()),
        }
    }

    /// Walks an object, handing each key (raw, `None` if escaped) to `value`, which consumes the value.
    fn object(
        &mut self,
        depth: usize,
        mut value: impl FnMut(&mut Self, Option<&'a [u8]>, usize) -> Result<(), CodecError>,
    ) -> Result<(), CodecError> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            value(self, key, depth)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(bad(self.i, "expected ',' or '}'")),
            }
        }
    }

    /// Reads a trade field if `key` is one; else skips the value.
    fn field(&mut self, f: &mut Fields<'a>, key: Option<&[u8]>, depth: usize) -> Result<(), CodecError> {
        match key {
            Some(b"e") => f.e = self.string()?,
            Some(b"E") => f.big_e = Some(self.int("E")?),
            Some(b"T") => f.big_t = Some(self.int("T")?),
            Some(b"s") => f.s = Some(self.plain_string("s")?),
            Some(b"t") => {
                let at = self.i;
                let v = self.int("t")?;
                f.t = Some(
                    u64::try_from(v)
                        .ok()
                        .filter(|&v| v <= MAX_SAFE)
                        .ok_or_else(|| bad(at, "\"t\" is not a trade id (0..2^53)"))?,
                );
            }
            Some(b"p") => f.p = Some(self.plain_string("p")?),
            Some(b"q") => f.q = Some(self.plain_string("q")?),
            Some(b"X") => f.x = Some(self.plain_string("X")?),
            Some(b"m") => f.m = Some(self.boolean("m")?),
            _ => self.skip_value(depth)?,
        }
        Ok(())
    }
}

/// Parses one frame into a trade. Errors: `BadJson` (syntax, or a kept field of the wrong shape)
/// and `NotATrade` (valid JSON that is some other event or lacks a field).
pub fn parse_trade(frame: &[u8]) -> Result<JsonTrade<'_>, CodecError> {
    parse(frame, false)
}

/// Like [`parse_trade`], but also refuses (`NotATrade`) what a `JSON.parse` reader such as
/// ts/source/parse.ts would take for something else or read differently: an `error`, `result` or
/// `id` key at the top, a `data` that is not an object, or an escaped key (`"d\u0061ta"` is `data`
/// to `JSON.parse`). The forwarder's fast path uses it so that it never accepts a frame the source's
/// own rules would not.
pub fn parse_plain_trade(frame: &[u8]) -> Result<JsonTrade<'_>, CodecError> {
    parse(frame, true)
}

fn not_plain(what: &str) -> CodecError {
    CodecError::NotATrade(format!("{what}: left to the full reader"))
}

fn parse(frame: &[u8], plain: bool) -> Result<JsonTrade<'_>, CodecError> {
    if let Some(t) = binance_layout(frame) {
        return Ok(t);
    }
    parse_general(frame, plain)
}

/// The reader of any JSON object, for every frame not in Binance's exact layout.
fn parse_general(frame: &[u8], plain: bool) -> Result<JsonTrade<'_>, CodecError> {
    let mut c = Cursor { b: frame, i: 0 };
    let mut top = Fields::default();
    let mut data: Option<Fields> = None;
    c.object(0, |c, key, depth| {
        if plain {
            match key {
                None => return Err(not_plain("escaped key")),
                Some(b"error" | b"result" | b"id") => return Err(not_plain("error or result frame")),
                Some(b"data") if c.peek()? != b'{' => return Err(not_plain("data is not an object")),
                _ => {}
            }
        }
        if key == Some(b"data") && c.peek()? == b'{' {
            let mut d = Fields::default();
            c.object(depth + 1, |c, k, dd| {
                if plain && k.is_none() {
                    return Err(not_plain("escaped key"));
                }
                c.field(&mut d, k, dd)
            })?;
            data = Some(d);
            Ok(())
        } else {
            c.field(&mut top, key, depth)
        }
    })?;
    c.ws();
    if c.i != frame.len() {
        return Err(bad(c.i, "unexpected bytes after the JSON object"));
    }
    let f = data.unwrap_or(top);
    if f.e != Some(b"trade") {
        let e = f.e.map(String::from_utf8_lossy).unwrap_or("(none)".into());
        return Err(CodecError::NotATrade(format!("event {e:?} is not a trade")));
    }
    match (f.s, f.big_e, f.big_t, f.t, f.p, f.q, f.m) {
        (
            Some(symbol),
            Some(event_time),
            Some(trade_time),
            Some(trade_id),
            Some(price),
            Some(qty),
            Some(maker),
        ) => Ok(JsonTrade {
            symbol,
            event_time,
            trade_time,
            trade_id,
            price,
            qty,
            maker,
            kind: f.x.unwrap_or(b"MARKET"),
        }),
        _ => Err(CodecError::NotATrade(
            "trade lacks one of s, E, T, t, p, q, m".into(),
        )),
    }
}

/// The exact layout Binance writes every trade in: these keys in this order, no whitespace, plain
/// strings, plain integers (`{"stream":"…","data":{"e":"trade","E":…,"T":…,"s":"…","t":…,"p":"…",
/// "q":"…","X":"…","m":…}}`, or the `data` object alone). Read with a fixed walk, ~4x faster than
/// the general reader; `None` on the first byte that differs, and the general reader decides. What
/// it accepts it reads exactly as the general reader does (a test compares the two on the capture
/// and on every one-byte change of it).
fn binance_layout(frame: &[u8]) -> Option<JsonTrade<'_>> {
    let mut w = Walk { b: frame, i: 0 };
    let combined = if w.lit(br#"{"stream":""#) {
        w.text()?;
        if !w.lit(br#","data":{"e":"trade","E":"#) {
            return None;
        }
        true
    } else if w.lit(br#"{"e":"trade","E":"#) {
        false
    } else {
        return None;
    };
    let event_time = w.int()?;
    w.lit(br#","T":"#).then_some(())?;
    let trade_time = w.int()?;
    w.lit(br#","s":""#).then_some(())?;
    let symbol = w.text()?;
    w.lit(br#","t":"#).then_some(())?;
    let trade_id = u64::try_from(w.int()?).ok().filter(|&v| v <= MAX_SAFE)?;
    w.lit(br#","p":""#).then_some(())?;
    let price = w.text()?;
    w.lit(br#","q":""#).then_some(())?;
    let qty = w.text()?;
    w.lit(br#","X":""#).then_some(())?;
    let kind = w.text()?;
    w.lit(br#","m":"#).then_some(())?;
    let maker = if w.lit(b"true") {
        true
    } else if w.lit(b"false") {
        false
    } else {
        return None;
    };
    let end: &[u8] = if combined { b"}}" } else { b"}" };
    (w.lit(end) && w.i == frame.len()).then_some(JsonTrade {
        symbol,
        event_time,
        trade_time,
        trade_id,
        price,
        qty,
        maker,
        kind,
    })
}

/// The cursor of `binance_layout`.
struct Walk<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Walk<'a> {
    /// Consumes `s` if the input continues with it.
    fn lit(&mut self, s: &[u8]) -> bool {
        let ok = self.b.get(self.i..self.i + s.len()) == Some(s);
        if ok {
            self.i += s.len();
        }
        ok
    }

    /// A string's bytes up to its closing quote (consumed), the opening one already read; `None`
    /// at an escape or a control character (the general reader's business).
    fn text(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        let rest = self.b.get(start..)?;
        let n = rest.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest[n] != b'"' {
            return None;
        }
        self.i = start + n + 1;
        Some(&rest[..n])
    }

    /// A non-negative JSON integer of at most 18 digits (so it fits an i64), no leading zero.
    fn int(&mut self) -> Option<i64> {
        let rest = self.b.get(self.i..)?;
        let n = rest.iter().take(19).take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 18 || (n > 1 && rest[0] == b'0') {
            return None;
        }
        let v = rest[..n].iter().fold(0i64, |v, &c| v * 10 + i64::from(c - b'0'));
        self.i += n;
        Some(v)
    }
}

/// The frames of a batch: newline-separated, `\r\n` tolerated, empty lines skipped.
pub fn lines(batch: &[u8]) -> impl Iterator<Item = &[u8]> {
    batch
        .split(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: &[u8] = br#"{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256321,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}"#;

    #[test]
    fn reads_a_combined_stream_frame() {
        let t = parse_trade(FRAME).unwrap();
        assert_eq!(t.symbol, b"BTCUSDT");
        assert_eq!(
            (t.event_time, t.trade_time, t.trade_id),
            (1723161256322, 1723161256321, 5266583935)
        );
        assert_eq!(
            (t.price, t.qty, t.kind, t.maker),
            (&b"61800.30"[..], &b"0.006"[..], &b"MARKET"[..], false)
        );
    }

    #[test]
    fn reads_a_bare_payload_with_unknown_keys_and_defaults_x() {
        let f = br#" {"e":"trade","st":{"a":[1,2.5e3,null,true,"x\"y"]},"E":1,"T":2,"s":"ETHUSDT","t":3,"p":"1.5","q":"2","m":true} "#;
        let t = parse_trade(f).unwrap();
        assert_eq!(
            (t.symbol, t.kind, t.maker, t.trade_id),
            (&b"ETHUSDT"[..], &b"MARKET"[..], true, 3)
        );
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        for n in 0..FRAME.len() {
            let e = parse_trade(&FRAME[..n]).unwrap_err();
            assert!(matches!(e.code(), "E_BAD_JSON" | "E_NOT_A_TRADE"), "{n}: {e}");
        }
    }

    #[test]
    fn names_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "E_BAD_JSON"),
            (b"[]", "E_BAD_JSON"),
            (br#"{"e":"trade"} x"#, "E_BAD_JSON"),
            (br#"{"result":null,"id":1}"#, "E_NOT_A_TRADE"),
            (br#"{"data":{"e":"aggTrade"}}"#, "E_NOT_A_TRADE"),
            (br#"{"data":{"e":"trade","E":1,"T":2,"s":"X","t":3,"p":"1","m":true}}"#, "E_NOT_A_TRADE"),
            (br#"{"data":{"e":"trade","E":1,"T":2,"s":"X","t":-3,"p":"1","q":"1","m":true}}"#, "E_BAD_JSON"),
            (br#"{"data":{"e":"trade","E":1.5,"T":2,"s":"X","t":3,"p":"1","q":"1","m":true}}"#, "E_BAD_JSON"),
            (br#"{"data":{"e":"trade","E":1,"T":2,"s":"X","t":9007199254740992,"p":"1","q":"1","m":true}}"#, "E_BAD_JSON"),
            (br#"{"data":{"e":"trade","E":1,"T":2,"s":"X","t":3,"p":1,"q":"1","m":true}}"#, "E_BAD_JSON"),
            (br#"{"data":{"e":"trade","E":1,"T":2,"s":"X","t":3,"p":"\u0031","q":"1","m":true}}"#, "E_BAD_JSON"),
            (br#"{"data":{"e":"trade","E":1,"T":2,"s":"X","t":3,"p":"1","q":"1","m":"yes"}}"#, "E_BAD_JSON"),
            (br#"{"a":01}"#, "E_BAD_JSON"),
            (br#"{"a":"\x"}"#, "E_BAD_JSON"),
        ];
        for (f, code) in cases {
            let e = parse_trade(f).unwrap_err();
            assert_eq!(e.code(), *code, "{}: {e}", String::from_utf8_lossy(f));
        }
    }

    /// The fixed walk must read whatever it accepts exactly as the general reader does, and leave
    /// everything else to it: checked on Binance-shaped frames and every one-byte change of them.
    #[test]
    fn the_binance_layout_walk_agrees_with_the_general_reader() {
        let bare = br#"{"e":"trade","E":0,"T":9,"s":"1000SATSUSDT","t":9007199254740991,"p":"0.0003406","q":"446799","X":"LIQUIDATION","m":true}"#;
        let big = br#"{"stream":"x","data":{"e":"trade","E":999999999999999999,"T":1000000000000000000,"s":"B","t":0,"p":"1","q":"2","X":"","m":true}}"#;
        let mut seen = 0;
        for base in [FRAME, &bare[..], &big[..]] {
            let mut cases: Vec<Vec<u8>> = vec![base.to_vec()];
            for i in 0..base.len() {
                for c in [
                    b'"', b'\\', b' ', b'0', b'9', b'-', b'.', b'e', b'}', b',', 0x1f, 0x80, b'a',
                ] {
                    let mut m = base.to_vec();
                    m[i] = c;
                    cases.push(m);
                }
                let mut del = base.to_vec();
                del.remove(i);
                cases.push(del);
                let mut ins = base.to_vec();
                ins.insert(i, b' ');
                cases.push(ins);
            }
            for m in &cases {
                for plain in [false, true] {
                    if let Some(fast) = binance_layout(m) {
                        seen += 1;
                        let general = parse_general(m, plain);
                        assert_eq!(
                            general.as_ref().ok(),
                            Some(&fast),
                            "{}",
                            String::from_utf8_lossy(m)
                        );
                    }
                }
            }
        }
        // The walk did take the common frames (and their harmless variants), not just refuse all.
        assert!(seen > 1000, "{seen}");
        assert!(binance_layout(FRAME).is_some() && binance_layout(bare).is_some());
        // Past i64 (19 digits) and past 2^53 for ids: left to the general reader, which refuses.
        let long = br#"{"e":"trade","E":1000000000000000000000,"T":1,"s":"B","t":1,"p":"1","q":"1","X":"M","m":true}"#;
        assert!(binance_layout(long).is_none());
        let id =
            br#"{"e":"trade","E":1,"T":1,"s":"B","t":9007199254740992,"p":"1","q":"1","X":"M","m":true}"#;
        assert!(binance_layout(id).is_none());
        assert_eq!(parse_trade(id).unwrap_err().code(), "E_BAD_JSON");
    }

    #[test]
    fn deep_nesting_is_refused_not_recursed() {
        let mut f = b"{\"a\":".to_vec();
        f.extend(std::iter::repeat_n(b'[', 100_000));
        assert_eq!(parse_trade(&f).unwrap_err().code(), "E_BAD_JSON");
    }

    #[test]
    fn splits_lines() {
        let v: Vec<&[u8]> = lines(b"a\r\n\nb\n").collect();
        assert_eq!(v, vec![&b"a"[..], &b"b"[..]]);
    }
}

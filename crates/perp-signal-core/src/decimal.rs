//! Exact conversion between decimal strings (as the exchange writes them, e.g. `"61800.30"`) and
//! integers in units of 10^-scale. No floats anywhere: a float cannot hold 0.1.
use crate::error::CodecError;

/// Largest scale carried: 10^18 still fits a u64 and covers every tick size an exchange uses.
pub const MAX_SCALE: u8 = 18;

const POW10: [u64; 20] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
    10_000_000_000_000_000,
    100_000_000_000_000_000,
    1_000_000_000_000_000_000,
    10_000_000_000_000_000_000,
];

/// 10^n for n <= 19 (larger n give 10^19: callers keep n within the wire's scales).
#[inline]
pub fn pow10(n: u8) -> u64 {
    POW10[usize::from(n.min(19))]
}

/// A parsed unsigned decimal: `int` and the fraction digits as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// All digits without the point, as an integer (`"61800.30"` -> 6180030).
    pub digits: u64,
    /// Number of digits after the point as written (`"61800.30"` -> 2).
    pub written: u8,
    /// Number of decimals actually needed (`"61800.30"` -> 1, `"5"` -> 0).
    pub needed: u8,
}

#[cold]
fn bad(s: &[u8], why: &str) -> CodecError {
    CodecError::BadDecimal(format!(
        "{:?} is not a plain decimal number ({why}); expected digits with an optional '.' such as \"61800.30\"",
        String::from_utf8_lossy(&s[..s.len().min(40)])
    ))
}

/// Parses an unsigned decimal with at most 19 significant digits and 18 decimals.
#[inline]
pub fn parse(s: &[u8]) -> Result<Parsed, CodecError> {
    // 19 digits cannot overflow a u64, so the hot loop needs no checked arithmetic.
    if s.len() >= 20 {
        return parse_long(s);
    }
    let mut digits: u64 = 0;
    let mut point: Option<usize> = None;
    // One past the last non-zero digit, tracked in the same pass (a select, not a branch) so
    // that the decimals needed come without a second scan of the fraction.
    let mut end_nonzero = 0usize;
    for (i, &b) in s.iter().enumerate() {
        let d = b.wrapping_sub(b'0');
        if d < 10 {
            digits = digits * 10 + u64::from(d);
            end_nonzero = if d != 0 { i + 1 } else { end_nonzero };
        } else if b == b'.' && point.is_none() {
            point = Some(i);
        } else {
            return Err(bad(s, "unexpected character"));
        }
    }
    let n_digits = s.len() - usize::from(point.is_some());
    if n_digits == 0 {
        return Err(bad(s, "no digits"));
    }
    let (written, needed) = match point {
        Some(p) => (s.len() - p - 1, end_nonzero.saturating_sub(p + 1)),
        None => (0, 0),
    };
    if written > usize::from(MAX_SCALE) {
        return Err(bad(s, "more than 18 decimals"));
    }
    Ok(Parsed {
        digits,
        written: written as u8,
        needed: needed as u8,
    })
}

/// The hot-path parse for encoders: all digits as one integer and the number of decimals as
/// written (`"61800.30"` -> `(6180030, 2)`), without the decimals-needed count that only a value
/// written with more decimals than the target scale asks for. Same acceptance and errors as
/// [`parse`].
#[inline(always)]
pub fn parse_written(s: &[u8]) -> Result<(u64, u8), CodecError> {
    match written_fast(s) {
        Some(dw) => Ok(dw),
        None => parse(s).map(|p| (p.digits, p.written)),
    }
}

/// Integer part, then fraction, in two tight loops (no "seen a point yet" state per digit); up to
/// 19 bytes, where 19 digits cannot overflow a u64. None: anything else, left to [`parse`].
#[inline(always)]
fn written_fast(s: &[u8]) -> Option<(u64, u8)> {
    let n = s.len();
    if n == 0 || n > 19 {
        return None;
    }
    let mut v = 0u64;
    // Slice patterns walk a pointer to the end: one compare per digit for the bound, none for
    // an index.
    let mut rest = s;
    while let [b, tail @ ..] = rest {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v * 10 + u64::from(d);
        rest = tail;
    }
    let [point, frac @ ..] = rest else {
        return Some((v, 0));
    };
    // A point, and at least one digit somewhere ("." alone is no number).
    if *point != b'.' || n == 1 {
        return None;
    }
    for b in frac {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    Some((v, frac.len() as u8))
}

/// Completes the rare long-string parse.
fn finish(s: &[u8], digits: u64, point: Option<usize>) -> Result<Parsed, CodecError> {
    let n_digits = s.len() - usize::from(point.is_some());
    if n_digits == 0 {
        return Err(bad(s, "no digits"));
    }
    let written = point.map_or(0, |p| s.len() - p - 1);
    if written > usize::from(MAX_SCALE) {
        return Err(bad(s, "more than 18 decimals"));
    }
    let frac = &s[s.len() - written..];
    let zeros = frac.iter().rev().take_while(|&&b| b == b'0').count();
    Ok(Parsed {
        digits,
        written: written as u8,
        needed: (written - zeros) as u8,
    })
}

#[cold]
fn parse_long(s: &[u8]) -> Result<Parsed, CodecError> {
    let mut digits: u64 = 0;
    let mut point: Option<usize> = None;
    for (i, &b) in s.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                digits = digits
                    .checked_mul(10)
                    .and_then(|d| d.checked_add(u64::from(b - b'0')))
                    .ok_or_else(|| bad(s, "too many digits for 64 bits"))?;
            }
            b'.' if point.is_none() => point = Some(i),
            _ => return Err(bad(s, "unexpected character")),
        }
    }
    finish(s, digits, point)
}

impl Parsed {
    /// The value in units of 10^-scale, or None when it needs more decimals than `scale` or the
    /// result overflows. Never rounds.
    #[inline]
    pub fn at_scale(&self, scale: u8) -> Option<u64> {
        if self.needed > scale {
            return None;
        }
        if scale >= self.written {
            // 10^20 and up is past a u64 (pow10 would clamp it): only zero scales that far.
            match scale - self.written {
                k if k > 19 => (self.digits == 0).then_some(0),
                k => self.digits.checked_mul(pow10(k)),
            }
        } else {
            // Only zeros are dropped here (needed <= scale).
            Some(self.digits / pow10(self.written - scale))
        }
    }

    /// The value rounded half away from zero to `scale` decimals (for reference values only,
    /// never for trades).
    pub fn rounded(&self, scale: u8) -> Option<u64> {
        if scale >= self.written {
            return self.at_scale(scale);
        }
        let div = pow10(self.written - scale);
        let q = self.digits / div;
        let r = self.digits % div;
        if r * 2 >= div {
            q.checked_add(1)
        } else {
            Some(q)
        }
    }
}

/// Parses `s` exactly at `scale`; None if it needs more decimals.
pub fn to_scaled(s: &[u8], scale: u8) -> Result<Option<u64>, CodecError> {
    parse(s).map(|p| p.at_scale(scale))
}

/// Appends `v` x 10^-scale with exactly `scale` decimals (`6180030, 2` -> `"61800.30"`).
pub fn write_fixed(out: &mut Vec<u8>, v: u64, scale: u8) {
    // 20 digits, a point and a leading zero fit 24 bytes up to scale 22; wire scales stop at 18.
    if scale > 22 {
        return write_fixed_wide(out, v, scale);
    }
    let mut buf = [0u8; 24];
    let mut i = buf.len();
    let mut v = v;
    let mut n = 0u8;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
        if n == scale {
            i -= 1;
            buf[i] = b'.';
        }
        if v == 0 && n > scale {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// [`write_fixed`] past 22 decimals: every u64 is below 10^20, so the integer part is 0.
#[cold]
fn write_fixed_wide(out: &mut Vec<u8>, v: u64, scale: u8) {
    let digits = v.to_string();
    out.extend_from_slice(b"0.");
    out.resize(out.len() + usize::from(scale) - digits.len(), b'0');
    out.extend_from_slice(digits.as_bytes());
}

/// Like [`write_fixed`] for a signed value.
pub fn write_fixed_signed(out: &mut Vec<u8>, v: i64, scale: u8) {
    if v < 0 {
        out.push(b'-');
    }
    write_fixed(out, v.unsigned_abs(), scale);
}

/// Appends the canonical shortest form: trailing fraction zeros and a bare point trimmed
/// (`6180030, 2` -> `"61800.3"`, `100, 2` -> `"1"`).
pub fn write_trimmed(out: &mut Vec<u8>, v: i64, scale: u8) {
    let start = out.len();
    write_fixed_signed(out, v, scale);
    if scale > 0 {
        while out.last() == Some(&b'0') {
            out.pop();
        }
        if out.last() == Some(&b'.') {
            out.pop();
        }
    }
    debug_assert!(out.len() > start);
}

/// Formats to a String (tests, errors).
pub fn fixed_string(v: u64, scale: u8) -> String {
    let mut out = Vec::new();
    write_fixed(&mut out, v, scale);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        let p = parse(b"61800.30").unwrap();
        assert_eq!(
            p,
            Parsed {
                digits: 6180030,
                written: 2,
                needed: 1
            }
        );
        assert_eq!(p.at_scale(2), Some(6180030));
        assert_eq!(p.at_scale(1), Some(618003));
        assert_eq!(p.at_scale(0), None);
        assert_eq!(p.at_scale(5), Some(6180030000));
        assert_eq!(to_scaled(b"0.009", 5).unwrap(), Some(900));
        assert_eq!(to_scaled(b"0.00000001", 5).unwrap(), None);
        assert_eq!(to_scaled(b"60000000000", 0).unwrap(), Some(60000000000));
        assert_eq!(to_scaled(b"5.", 0).unwrap(), Some(5));
        assert_eq!(to_scaled(b".5", 1).unwrap(), Some(5));
        // Decimals needed ignore trailing fraction zeros but never integer-part zeros.
        for (text, needed) in [
            ("100.000", 0),
            ("10.10", 1),
            ("0.0", 0),
            ("500", 0),
            ("0.0100", 2),
            ("7.", 0),
        ] {
            assert_eq!(parse(text.as_bytes()).map(|p| p.needed), Ok(needed), "{text}");
        }
        for (text, dw) in [
            ("5.", (5, 0)),
            (".5", (5, 1)),
            ("0.0100", (100, 4)),
            ("42", (42, 0)),
        ] {
            assert_eq!(parse_written(text.as_bytes()), Ok(dw), "{text}");
        }
    }

    #[test]
    fn fast_and_checked_paths_agree() {
        let mut x: u64 = 88172645463325252;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = x % 10u64.pow((x >> 60) as u32 % 17 + 1);
            let scale = ((x >> 40) % 10) as u8;
            let text = fixed_string(v, scale);
            let fast = parse(text.as_bytes()).unwrap();
            let slow = parse_long(text.as_bytes()).unwrap();
            assert_eq!(fast, slow, "{text}");
            assert_eq!(
                parse_written(text.as_bytes()),
                Ok((fast.digits, fast.written)),
                "{text}"
            );
            assert_eq!(fast.at_scale(scale), Some(v), "{text}");
        }
        for junk in [&b"12a4"[..], b"1/2", b"1:2", b"..", b"1.2.", b"12345678.1234567/"] {
            assert!(parse(junk).is_err(), "{junk:?}");
            assert!(parse_written(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn rejects_junk() {
        for s in [
            &b""[..],
            b".",
            b"-1",
            b"1e5",
            b"1.2.3",
            b" 1",
            b"99999999999999999999",
            b"0.0000000000000000001",
        ] {
            assert_eq!(parse(s).unwrap_err().code(), "E_BAD_DECIMAL", "{s:?}");
            assert_eq!(parse_written(s).unwrap_err().code(), "E_BAD_DECIMAL", "{s:?}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(fixed_string(6180030, 2), "61800.30");
        assert_eq!(fixed_string(6, 3), "0.006");
        assert_eq!(fixed_string(0, 0), "0");
        assert_eq!(fixed_string(0, 2), "0.00");
        assert_eq!(fixed_string(u64::MAX, 18), "18.446744073709551615");
        let mut v = Vec::new();
        write_trimmed(&mut v, 6180030000, 5);
        assert_eq!(v, b"61800.3");
        v.clear();
        write_trimmed(&mut v, 100, 2);
        assert_eq!(v, b"1");
        v.clear();
        write_trimmed(&mut v, -150, 5);
        assert_eq!(v, b"-0.0015");
    }

    #[test]
    fn formats_any_scale_without_panicking() {
        assert_eq!(fixed_string(6180030, 22), "0.0000000000000006180030");
        assert_eq!(fixed_string(5, 25), format!("0.{}5", "0".repeat(24)));
        assert_eq!(fixed_string(0, 23), format!("0.{}", "0".repeat(23)));
        assert_eq!(fixed_string(u64::MAX, 30), "0.000000000018446744073709551615");
        assert_eq!(
            fixed_string(u64::MAX, 255),
            format!("0.{}18446744073709551615", "0".repeat(235))
        );
        let mut v = Vec::new();
        write_trimmed(&mut v, -50, 40);
        assert_eq!(v, format!("-0.{}5", "0".repeat(38)).into_bytes());
    }

    #[test]
    fn scales_past_19_decimals_overflow_instead_of_clamping() {
        assert_eq!(to_scaled(b"1", 19).unwrap(), Some(10_000_000_000_000_000_000));
        assert_eq!(to_scaled(b"1", 20).unwrap(), None);
        assert_eq!(to_scaled(b"1", 30).unwrap(), None);
        assert_eq!(to_scaled(b"0.5", 30).unwrap(), None);
        assert_eq!(to_scaled(b"0.000", 255).unwrap(), Some(0));
        assert_eq!(parse(b"2").unwrap().rounded(40), None);
    }

    #[test]
    fn rounds_references_only_on_request() {
        let p = parse(b"61800.123456").unwrap();
        assert_eq!(p.at_scale(5), None);
        assert_eq!(p.rounded(5), Some(6180012346));
        assert_eq!(parse(b"1.000004").unwrap().rounded(5), Some(100000));
    }
}

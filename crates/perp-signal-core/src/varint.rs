//! LEB128 unsigned varints and zigzag signed varints, as wire v1 defines them.
use crate::error::CodecError;

/// Longest encoding of a u64: ceil(64 / 7).
pub const MAX_VARINT_LEN: usize = 10;

#[inline]
pub fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

#[inline]
pub fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Values below this take the register-only path of [`short_uvarint`] (at most 4 bytes).
pub(crate) const SHORT_LIMIT: u64 = 1 << 28;

/// The varint of `v` (< [`SHORT_LIMIT`]) in the low bytes of a word, and its length (1..=4): the
/// building block of a frame assembled in registers (see `wire::frame::Short`).
#[inline(always)]
pub(crate) fn short_uvarint(v: u32) -> (u32, u32) {
    debug_assert!(u64::from(v) < SHORT_LIMIT);
    let x = (v & 0x7f) | ((v << 1) & 0x7f00) | ((v << 2) & 0x7f_0000) | ((v << 3) & 0x7f00_0000);
    let len = 1 + u32::from(v >= 1 << 7) + u32::from(v >= 1 << 14) + u32::from(v >= 1 << 21);
    // Continuation bit on every byte but the last.
    (x | (0x0080_8080 >> (8 * (4 - len))), len)
}

/// Bytes of the varint of a value with `leading_zeros(v | 1)` = index.
const LEN_BY_LZ: [u8; 64] = {
    let mut t = [0u8; 64];
    let mut lz = 0;
    while lz < 64 {
        t[lz] = (64 - lz).div_ceil(7) as u8;
        lz += 1;
    }
    t
};

/// Appends `v` to `out`; returns the number of bytes written.
///
/// Trade fields take 1, 2 or 3 bytes at random, so a byte-at-a-time loop mispredicts its exit
/// on most calls; below 2^56 (every delta and quantity in practice) the 7-bit groups are spread
/// into one word instead, stored whole, and the length cut back.
#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, v: u64) -> usize {
    if v >= 1 << 56 {
        return put_uvarint_long(out, v);
    }
    // 56 bits -> two 28-bit halves in 32-bit lanes -> 14-bit quarters -> 7-bit groups in bytes.
    let x = (v & 0x0fff_ffff) | ((v & 0x00ff_ffff_f000_0000) << 4);
    let x = (x & 0x0000_3fff_0000_3fff) | ((x & 0x0fff_c000_0fff_c000) << 2);
    let x = (x & 0x007f_007f_007f_007f) | ((x & 0x3f80_3f80_3f80_3f80) << 1);
    let len = usize::from(LEN_BY_LZ[(v | 1).leading_zeros() as usize & 63]);
    // Continuation bit on every byte but the last.
    let more = 0x0080_8080_8080_8080u64 >> (8 * (8 - len));
    let at = out.len();
    out.extend_from_slice(&(x | more).to_le_bytes());
    out.truncate(at + len);
    len
}

#[cold]
fn put_uvarint_long(out: &mut Vec<u8>, mut v: u64) -> usize {
    let start = out.len();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out.len() - start
}

#[inline]
pub fn put_ivarint(out: &mut Vec<u8>, v: i64) -> usize {
    put_uvarint(out, zigzag(v))
}

/// Reads an unsigned varint at `buf[*pos..]` and advances `pos` past it.
///
/// Rejects encodings longer than 10 bytes and tenth bytes that would carry bits beyond 64, so a
/// hostile frame can neither loop us nor wrap a value silently.
#[inline]
pub fn get_uvarint(buf: &[u8], pos: &mut usize) -> Result<u64, CodecError> {
    let start = *pos;
    // One-byte values dominate trade frames.
    if let Some(&b) = buf.get(start) {
        if b < 0x80 {
            *pos = start + 1;
            return Ok(u64::from(b));
        }
    }
    let mut result: u64 = 0;
    let mut shift = 0u32;
    for i in 0..MAX_VARINT_LEN {
        let Some(&b) = buf.get(start + i) else {
            return Err(CodecError::Truncated { offset: start + i });
        };
        if i == MAX_VARINT_LEN - 1 && b > 0x01 {
            return if b & 0x80 != 0 {
                Err(CodecError::VarintTooLong { offset: start })
            } else {
                Err(CodecError::VarintOverflow { offset: start })
            };
        }
        result |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            *pos = start + i + 1;
            return Ok(result);
        }
        shift += 7;
    }
    Err(CodecError::VarintTooLong { offset: start })
}

#[inline]
pub fn get_ivarint(buf: &[u8], pos: &mut usize) -> Result<i64, CodecError> {
    get_uvarint(buf, pos).map(unzigzag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_uvarint(&mut out, v);
        out
    }

    #[test]
    fn spec_examples() {
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(128), [0x80, 0x01]);
        assert_eq!(enc(16384), [0x80, 0x80, 0x01]);
        assert_eq!(
            enc(u64::MAX),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(zigzag(0), 0);
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        assert_eq!(zigzag(-2), 3);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
    }

    #[test]
    fn round_trip_edges() {
        for v in [
            0,
            1,
            127,
            128,
            255,
            16383,
            16384,
            u64::MAX / 2,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let b = enc(v);
            let mut pos = 0;
            assert_eq!(get_uvarint(&b, &mut pos), Ok(v));
            assert_eq!(pos, b.len());
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -64, 64] {
            let mut b = Vec::new();
            put_ivarint(&mut b, v);
            let mut pos = 0;
            assert_eq!(get_ivarint(&b, &mut pos), Ok(v));
        }
    }

    #[test]
    fn word_and_byte_writers_agree() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for i in 0..100_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Every bit length from 0 to 64, and the powers of two around each length boundary.
            let v = match i % 3 {
                0 => x >> (i % 65).min(63),
                1 => 1u64
                    .checked_shl(i % 64)
                    .unwrap_or(0)
                    .wrapping_sub(u64::from(i % 2)),
                _ => x & 0xff,
            };
            let mut fast = vec![0xaa];
            let mut slow = vec![0xaa];
            let n = put_uvarint(&mut fast, v);
            assert_eq!(n, put_uvarint_long(&mut slow, v));
            assert_eq!(fast, slow, "{v}");
            assert_eq!(get_uvarint(&fast, &mut 1), Ok(v));
        }
    }

    #[test]
    fn short_writer_agrees_below_its_limit() {
        for v in (0..2000u64).chain((7..=28).flat_map(|b| [(1u64 << b) - 1, 1 << b, (1 << b) + 1])) {
            if v >= SHORT_LIMIT {
                continue;
            }
            let (w, n) = short_uvarint(v as u32);
            assert_eq!(&w.to_le_bytes()[..n as usize], enc(v), "{v}");
            assert!(
                n == 4 || w >> (8 * n) == 0,
                "{v}: bytes beyond the length must be zero"
            );
        }
    }

    #[test]
    fn hostile_input() {
        let mut pos = 0;
        assert_eq!(
            get_uvarint(&[0x80, 0x80], &mut pos),
            Err(CodecError::Truncated { offset: 2 })
        );
        let eleven = [0xffu8; 11];
        assert_eq!(
            get_uvarint(&eleven, &mut 0),
            Err(CodecError::VarintTooLong { offset: 0 })
        );
        let overflow = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(
            get_uvarint(&overflow, &mut 0),
            Err(CodecError::VarintOverflow { offset: 0 })
        );
    }
}

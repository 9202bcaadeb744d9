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

/// Appends `v` to `out`; returns the number of bytes written.
#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) -> usize {
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

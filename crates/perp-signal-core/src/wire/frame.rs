//! Framing shared by TCP, the shm ring and batches: every frame is a u32 little-endian length,
//! then that many payload bytes. A TCP stream opens with a `START` frame, then the header frame.
use crate::error::CodecError;

/// Payload of the first frame of a TCP stream.
pub const START: &[u8] = b"START";

/// No legitimate payload comes near this (a 1024-asset v2 snapshot is ~70 KiB); anything larger is
/// corruption or a foreign protocol, and must not make a reader allocate it.
pub const MAX_FRAME: usize = 1 << 20;

/// Appends `payload` with its length prefix.
#[inline]
pub fn put_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Appends a length prefix and whatever `write` appends; on error nothing is appended.
#[inline]
pub fn framed<E>(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<(), E> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    match write(out) {
        Ok(()) => {
            let len = (out.len() - at - 4) as u32;
            out[at..at + 4].copy_from_slice(&len.to_le_bytes());
            Ok(())
        }
        Err(e) => {
            out.truncate(at);
            Err(e)
        }
    }
}

/// Appends whatever `write` appends, with its length prefix when `framed` (the general path
/// beside [`Short`]).
#[inline]
pub(crate) fn append(out: &mut Vec<u8>, framed: bool, write: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    if framed {
        out.extend_from_slice(&[0; 4]);
    }
    write(out);
    if framed {
        let len = (out.len() - at - 4) as u32;
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// A short message (at most 16 payload bytes) assembled in a register and appended with two
/// fixed-size stores, instead of a length check and store per byte: the common trade message
/// of both wire versions fits (a few header bytes and three varints below
/// [`SHORT_LIMIT`](crate::varint::SHORT_LIMIT)).
#[derive(Clone, Copy)]
pub(crate) struct Short {
    bits: u128,
    len: u32,
}

impl Short {
    /// Starts with up to 4 fixed bytes (`bytes` little-endian, `len` of them).
    #[inline(always)]
    pub(crate) fn new(bytes: u32, len: u32) -> Self {
        Short {
            bits: u128::from(bytes),
            len,
        }
    }

    /// Appends a word from [`short_uvarint`](crate::varint::short_uvarint). The caller keeps
    /// the total at 16 bytes or less.
    #[inline(always)]
    pub(crate) fn push(self, (word, len): (u32, u32)) -> Self {
        Short {
            bits: self.bits | (u128::from(word) << (8 * self.len)),
            len: self.len + len,
        }
    }

    /// Appends the message, with its u32 length prefix when `framed`.
    #[inline(always)]
    pub(crate) fn write(self, out: &mut Vec<u8>, framed: bool) {
        let at = out.len();
        let payload = self.bits.to_le_bytes();
        if framed {
            let mut b = [0u8; 20];
            b[..4].copy_from_slice(&self.len.to_le_bytes());
            b[4..].copy_from_slice(&payload);
            out.extend_from_slice(&b);
            out.truncate(at + 4 + self.len as usize);
        } else {
            out.extend_from_slice(&payload);
            out.truncate(at + self.len as usize);
        }
    }
}

/// Iterates the payloads of a framed batch; a truncated or absurd frame ends it with an error.
pub struct Frames<'a> {
    buf: &'a [u8],
    pos: usize,
    max: usize,
}

impl<'a> Frames<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Frames {
            buf,
            pos: 0,
            max: MAX_FRAME,
        }
    }
    /// Byte offset of the next frame's length prefix.
    pub fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<&'a [u8], CodecError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        if rest.len() < 4 {
            self.pos = self.buf.len();
            return Some(Err(CodecError::Truncated {
                offset: self.buf.len(),
            }));
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > self.max {
            self.pos = self.buf.len();
            return Some(Err(CodecError::FrameTooLong { len, max: self.max }));
        }
        if rest.len() - 4 < len {
            self.pos = self.buf.len();
            return Some(Err(CodecError::Truncated {
                offset: self.buf.len(),
            }));
        }
        let p = &rest[4..4 + len];
        self.pos += 4 + len;
        Some(Ok(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_reject_absurd_lengths() {
        let mut out = Vec::new();
        put_frame(&mut out, START);
        put_frame(&mut out, b"");
        put_frame(&mut out, b"xy");
        assert_eq!(&out[..9], b"\x05\x00\x00\x00START");
        let got: Vec<_> = Frames::new(&out).collect::<Result<_, _>>().unwrap();
        assert_eq!(got, vec![START, b"", b"xy"]);
        let absurd = [0xff, 0xff, 0xff, 0x7f, 0];
        assert_eq!(
            Frames::new(&absurd).next(),
            Some(Err(CodecError::FrameTooLong {
                len: 0x7fff_ffff,
                max: MAX_FRAME
            }))
        );
        assert_eq!(
            Frames::new(&out[..out.len() - 1]).last(),
            Some(Err(CodecError::Truncated {
                offset: out.len() - 1
            }))
        );
    }
}

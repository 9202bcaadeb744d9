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

//! Where a forwarded request's body ends (RFC 9112 §6): after `Content-Length` bytes, or after
//! the last chunk and trailer section of a chunked body (§7.1). The proxy forwards the body
//! unchanged and no byte past it: what a client sends after its request (a pipelined second
//! request, to any host) must never reach the origin server, which would answer it as a
//! request the policy never saw. Runs on the proxy's runtime.

/// A chunk size of more hex digits than this is refused (2^60 bytes is no real chunk).
const MAX_SIZE_DIGITS: u8 = 15;

/// A request body being read: how it is delimited and how far it has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Framing {
    /// This many bytes of the body remain.
    Length(u64),
    /// A chunked body, at this point of its grammar.
    Chunked(Chunked),
}

/// Where a chunked body is (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunked {
    /// In a chunk size's hex digits: their value and count so far.
    Size { value: u64, digits: u8 },
    /// In the chunk extensions after the size, until CR.
    Extension { size: u64 },
    /// After the size line's CR: its LF.
    SizeLf { size: u64 },
    /// In a chunk's data: this many bytes remain.
    Data(u64),
    /// After the data: its CR.
    DataCr,
    /// After the data's CR: its LF.
    DataLf,
    /// At the start of a trailer line, or of the blank line that ends the body.
    TrailerStart,
    /// In a trailer field line, until CR.
    Trailer,
    /// After a trailer line's CR: its LF.
    TrailerLf,
    /// After the final blank line's CR: its LF.
    EndLf,
    /// The body ended.
    Done,
}

impl Framing {
    /// A chunked body, before its first chunk.
    pub(crate) fn chunked() -> Self {
        Self::Chunked(Chunked::Size {
            value: 0,
            digits: 0,
        })
    }

    /// Whether the body has ended.
    pub(crate) fn done(&self) -> bool {
        matches!(self, Self::Length(0) | Self::Chunked(Chunked::Done))
    }

    /// Reads `bytes`, which follow what was read before: how many of them belong to the body
    /// (all, or those up to its end).
    pub(crate) fn take(&mut self, bytes: &[u8]) -> Result<usize, &'static str> {
        match self {
            Self::Length(remaining) => {
                let n = usize::try_from(*remaining).map_or(bytes.len(), |r| r.min(bytes.len()));
                *remaining -= n as u64;
                Ok(n)
            }
            Self::Chunked(state) => state.take(bytes),
        }
    }
}

impl Chunked {
    fn take(&mut self, bytes: &[u8]) -> Result<usize, &'static str> {
        let mut at = 0;
        while at < bytes.len() && *self != Chunked::Done {
            if let Chunked::Data(remaining) = *self {
                let n = usize::try_from(remaining)
                    .map_or(bytes.len() - at, |r| r.min(bytes.len() - at));
                at += n;
                let left = remaining - n as u64;
                *self = if left == 0 {
                    Chunked::DataCr
                } else {
                    Chunked::Data(left)
                };
                continue;
            }
            *self = self.step(bytes[at])?;
            at += 1;
        }
        Ok(at)
    }

    /// The state after one byte outside a chunk's data.
    fn step(self, b: u8) -> Result<Self, &'static str> {
        let text = |b: u8| b == b'\t' || !b.is_ascii_control();
        Ok(match (self, b) {
            (Chunked::Size { value, digits }, _) if b.is_ascii_hexdigit() => {
                if digits == MAX_SIZE_DIGITS {
                    return Err("a chunk size too large");
                }
                let digit = u64::from(char::from(b).to_digit(16).unwrap_or_default());
                Chunked::Size {
                    value: value << 4 | digit,
                    digits: digits + 1,
                }
            }
            (Chunked::Size { value, digits }, b';' | b' ' | b'\t') if digits > 0 => {
                Chunked::Extension { size: value }
            }
            (Chunked::Size { value, digits }, b'\r') if digits > 0 => {
                Chunked::SizeLf { size: value }
            }
            (Chunked::Extension { size }, b'\r') => Chunked::SizeLf { size },
            (Chunked::Extension { size }, _) if text(b) => Chunked::Extension { size },
            (Chunked::SizeLf { size: 0 }, b'\n') => Chunked::TrailerStart,
            (Chunked::SizeLf { size }, b'\n') => Chunked::Data(size),
            (Chunked::DataCr, b'\r') => Chunked::DataLf,
            (Chunked::DataLf, b'\n') => Chunked::Size {
                value: 0,
                digits: 0,
            },
            (Chunked::TrailerStart, b'\r') => Chunked::EndLf,
            (Chunked::Trailer, b'\r') => Chunked::TrailerLf,
            (Chunked::TrailerStart | Chunked::Trailer, _) if text(b) => Chunked::Trailer,
            (Chunked::TrailerLf, b'\n') => Chunked::TrailerStart,
            (Chunked::EndLf, b'\n') => Chunked::Done,
            _ => return Err("a malformed chunked body"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` one split at a time, as reads would deliver them; the body's length.
    fn body_length(mut framing: Framing, bytes: &[u8], split: usize) -> Result<usize, &str> {
        let mut taken = 0;
        for piece in bytes.chunks(split.max(1)) {
            let n = framing.take(piece)?;
            taken += n;
            if n < piece.len() || framing.done() {
                break;
            }
        }
        assert!(framing.done(), "the body did not end: {framing:?}");
        Ok(taken)
    }

    #[test]
    fn a_body_ends_at_its_length_or_last_chunk_whatever_follows() {
        let pipelined = b"GET http://other.test/ HTTP/1.1\r\nHost: other.test\r\n\r\n";
        let chunked = b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n";
        for split in [1, 2, 3, 7, 1000] {
            let mut bytes = chunked.to_vec();
            bytes.extend_from_slice(pipelined);
            assert_eq!(
                body_length(Framing::chunked(), &bytes, split),
                Ok(chunked.len()),
                "split {split}"
            );
            let mut bytes = b"hello".to_vec();
            bytes.extend_from_slice(pipelined);
            assert_eq!(body_length(Framing::Length(5), &bytes, split), Ok(5));
        }
        assert_eq!(
            body_length(Framing::chunked(), b"A\r\n0123456789\r\n0\r\n\r\nrest", 4),
            Ok(20)
        );
        assert!(Framing::Length(0).done());
    }

    #[test]
    fn a_malformed_chunked_body_is_refused() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"\r\n",
            b"zz\r\n",
            b"0\r\nX: a\nb\r\n\r\n",
            b"1000000000000000\r\n",
        ] {
            let mut framing = Framing::chunked();
            assert!(
                framing.take(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

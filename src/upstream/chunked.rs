//! A chunked body's framing (RFC 9112 §7.1), read byte by byte: the native HTTP/1 path
//! forwards a chunked response as it came and needs only where it ends, so that the
//! connection can carry the next response; an HTTP/2 client's response is decoded from it
//! (`h1_body.rs`: where the data is, and the trailers). Anything malformed is an error, and
//! the exchange is cut off.

/// Longest chunk-size line (extensions included) and trailer section accepted.
const MAX_LINE: u32 = 4096;
const MAX_TRAILERS: u32 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A chunk's size, in hex: `digits` read so far.
    Size {
        digits: u8,
        value: u64,
    },
    /// After the size: whitespace before `;` or CR (RFC 9112's BWS), nothing else.
    SizeWs {
        value: u64,
    },
    /// After `;`: extensions (ignored) up to CR; never a bare LF.
    Extension {
        seen: u32,
        value: u64,
    },
    SizeLf {
        value: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    /// The start of a trailer line, or of the final CRLF.
    LineStart {
        seen: u32,
    },
    TrailerLine {
        seen: u32,
    },
    TrailerLf {
        seen: u32,
    },
    EndLf,
    Done,
}

#[derive(Debug, Clone)]
pub struct Scanner {
    state: State,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: State::Size {
                digits: 0,
                value: 0,
            },
        }
    }
}

impl Scanner {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The bytes of chunk data that come next (0 while framing bytes do).
    pub fn data_left(&self) -> u64 {
        match self.state {
            State::Data(left) => left,
            _ => 0,
        }
    }

    /// Whether the next byte belongs to the trailer section (its final CRLF included).
    pub fn in_trailers(&self) -> bool {
        matches!(
            self.state,
            State::LineStart { .. }
                | State::TrailerLine { .. }
                | State::TrailerLf { .. }
                | State::EndLf
        )
    }

    /// Reads `bytes` as the body's next ones; returns how many belong to it (fewer than given
    /// only when the body ended within them).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, &'static str> {
        let mut i = 0;
        while i < bytes.len() {
            if let State::Data(left) = self.state {
                let take = left.min((bytes.len() - i) as u64);
                i += take as usize;
                self.state = if take == left {
                    State::DataCr
                } else {
                    State::Data(left - take)
                };
                continue;
            }
            let b = bytes[i];
            self.state = match self.state {
                State::Size { digits, value } => match (b as char).to_digit(16) {
                    Some(d) if digits < 16 => State::Size {
                        digits: digits + 1,
                        value: value << 4 | u64::from(d),
                    },
                    Some(_) => return Err("chunk size too large"),
                    None if digits == 0 => return Err("chunk size missing"),
                    None => match b {
                        b'\r' => State::SizeLf { value },
                        b';' => State::Extension { seen: 1, value },
                        b' ' | b'\t' => State::SizeWs { value },
                        _ => return Err("bad chunk size"),
                    },
                },
                State::SizeWs { value } => match b {
                    b'\r' => State::SizeLf { value },
                    b';' => State::Extension { seen: 1, value },
                    b' ' | b'\t' => State::SizeWs { value },
                    _ => return Err("bad chunk size"),
                },
                State::Extension { seen, value } => match b {
                    b'\r' => State::SizeLf { value },
                    b'\n' => return Err("bare LF in a chunk size line"),
                    _ if seen >= MAX_LINE => return Err("chunk extension too long"),
                    _ => State::Extension {
                        seen: seen + 1,
                        value,
                    },
                },
                State::SizeLf { value } => match (b, value) {
                    (b'\n', 0) => State::LineStart { seen: 0 },
                    (b'\n', n) => State::Data(n),
                    _ => return Err("chunk size line not ended by CRLF"),
                },
                State::Data(_) => unreachable!("handled above"),
                State::DataCr => match b {
                    b'\r' => State::DataLf,
                    _ => return Err("chunk data not followed by CRLF"),
                },
                State::DataLf => match b {
                    b'\n' => State::Size {
                        digits: 0,
                        value: 0,
                    },
                    _ => return Err("chunk data not followed by CRLF"),
                },
                // A client that takes a bare LF as a line's end (RFC 9112 §2.2 lets it) would
                // read a line here that we did not: refused, as hyper refuses it.
                State::LineStart { seen } => match b {
                    b'\r' => State::EndLf,
                    b'\n' | 0 => return Err("bare LF or NUL in the trailers"),
                    _ if seen >= MAX_TRAILERS => return Err("trailers too long"),
                    _ => State::TrailerLine { seen: seen + 1 },
                },
                State::TrailerLine { seen } => match b {
                    b'\r' => State::TrailerLf { seen },
                    b'\n' | 0 => return Err("bare LF or NUL in the trailers"),
                    _ if seen >= MAX_TRAILERS => return Err("trailers too long"),
                    _ => State::TrailerLine { seen: seen + 1 },
                },
                State::TrailerLf { seen } => match b {
                    b'\n' => State::LineStart { seen },
                    _ => return Err("trailer line not ended by CRLF"),
                },
                State::EndLf => match b {
                    b'\n' => {
                        self.state = State::Done;
                        return Ok(i + 1);
                    }
                    _ => return Err("chunked body not ended by CRLF"),
                },
                State::Done => return Ok(i),
            };
            i += 1;
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_in_pieces(body: &[u8], piece: usize) -> Result<(usize, bool), &'static str> {
        let mut scanner = Scanner::default();
        let mut taken = 0;
        for part in body.chunks(piece) {
            let n = scanner.feed(part)?;
            taken += n;
            if n < part.len() {
                break;
            }
        }
        Ok((taken, scanner.is_done()))
    }

    #[test]
    fn a_chunked_body_ends_where_it_ends_in_any_pieces() {
        let body =
            b"5 \t;x\r\nhello\r\n1A;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-t: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        for piece in 1..=body.len() {
            assert_eq!(
                scan_in_pieces(body, piece),
                Ok((end, true)),
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        assert_eq!(scan_in_pieces(b"5\r\nhel", 3), Ok((6, false)));
        assert_eq!(scan_in_pieces(b"0\r\n\r", 2), Ok((4, false)));
    }

    #[test]
    fn malformed_chunking_is_an_error() {
        for bad in [
            &b"\r\n"[..],
            b"g\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloX",
            b"11111111111111111\r\n",
            b"0\r\n\rX",
            b"-1\r\n",
            b"5 5\r\nhello\r\n0\r\n\r\n",
            b"5 x\r\n",
            b"0\r\nx-t: 1\nx-u: 2\r\n\r\n",
            b"0\r\n\n\r\n",
            b"5;a=b\ncd\r\n",
        ] {
            assert!(scan_in_pieces(bad, bad.len()).is_err(), "{bad:?}");
        }
    }
}

//! A response head from an upstream, parsed with httparse and checked (RFC 9112 framing, hop-by-hop
//! headers), then written for the client by a [`ResponseOut`]: HTTP/1.1 bytes for the native
//! path's client, or a status and header map for hyper's engine (an HTTP/2 client's answer).

use std::mem::MaybeUninit;

use super::{header_kind, line, parse_length, tokens, Kind, MAX_HEADERS};
pub use crate::upstream::h1_body::Framing;

/// Where a parsed response head goes: only the client's headers are given to it.
pub trait ResponseOut {
    /// The status line; `head_len` is the upstream head's size, a hint for what follows.
    fn status(&mut self, status: u16, reason: &[u8], head_len: usize) -> Result<(), &'static str>;
    /// A header the client gets; `Transfer-Encoding` only when the body is chunked and goes
    /// through as it came.
    fn header(&mut self, name: &[u8], value: &[u8]) -> Result<(), &'static str>;
    /// The client's connection closes after this response (`close_client`, or a body that
    /// ends with the upstream's connection).
    fn close(&mut self);
    /// The head is complete.
    fn end(&mut self);
}

/// The client's head as HTTP/1.1 bytes, ended by its blank line.
impl ResponseOut for Vec<u8> {
    fn status(&mut self, status: u16, reason: &[u8], head_len: usize) -> Result<(), &'static str> {
        self.reserve(head_len + 32);
        self.extend_from_slice(b"HTTP/1.1 ");
        self.extend_from_slice(itoa3(status).as_slice());
        self.push(b' ');
        self.extend_from_slice(reason);
        self.extend_from_slice(b"\r\n");
        Ok(())
    }

    fn header(&mut self, name: &[u8], value: &[u8]) -> Result<(), &'static str> {
        line(self, name, value);
        Ok(())
    }

    fn close(&mut self) {
        self.extend_from_slice(b"connection: close\r\n");
    }

    fn end(&mut self) {
        self.extend_from_slice(b"\r\n");
    }
}

/// A response head from the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub len: usize,
    pub status: u16,
    pub framing: Framing,
    /// The upstream connection may carry another request after this response.
    pub reusable: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ParsedResponse {
    Partial,
    /// A 1xx other than 101, `len` bytes long: skipped, as hyper's client skips them.
    Interim(usize),
    /// The client's head is in `out`.
    Final(ResponseHead),
}

/// Parses the response at the start of `buf` and gives the client's head to `out`:
/// hop-by-hop headers gone (and those `Connection` names), `Connection: close` when
/// `close_client` or the body ends with the upstream's connection.
pub fn response<O: ResponseOut>(
    buf: &[u8],
    head_request: bool,
    close_client: bool,
    out: &mut O,
) -> Result<ParsedResponse, &'static str> {
    let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let parser = httparse::ParserConfig::default();
    let len = match parser.parse_response_with_uninit_headers(&mut res, buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(ParsedResponse::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err("too many header lines"),
        Err(_) => return Err("unparsable response head"),
    };
    let (Some(version), Some(status)) = (res.version, res.code) else {
        return Err("unparsable response head");
    };
    match status {
        101 => return Err("switching protocols without an upgrade"),
        100..=199 => return Ok(ParsedResponse::Interim(len)),
        _ => {}
    }
    let mut length = None;
    let mut chunked = None;
    let mut upstream_close = version == 0;
    let mut named: smallvec::SmallVec<[&[u8]; 4]> = smallvec::SmallVec::new();
    for header in res.headers.iter() {
        match header_kind(header.name.as_bytes()) {
            Kind::ContentLength => {
                if length.is_some() {
                    return Err("more than one Content-Length");
                }
                length = Some(parse_length(header.value).ok_or("bad Content-Length")?);
            }
            Kind::TransferEncoding => {
                // Chunked when it is the last coding (RFC 9112 §6.3); anything else reads
                // until close.
                let last = tokens(header.value).last().unwrap_or(b"");
                chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
            }
            Kind::Connection => {
                for token in tokens(header.value) {
                    if token.eq_ignore_ascii_case(b"close") {
                        upstream_close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                        upstream_close = false;
                    } else {
                        named.push(token);
                    }
                }
            }
            _ => {}
        }
    }
    if length.is_some() && chunked.is_some() {
        return Err("both Content-Length and Transfer-Encoding");
    }
    let framing = if head_request || status == 204 || status == 304 {
        Framing::Empty
    } else {
        match (length, chunked) {
            (_, Some(true)) => Framing::Chunked,
            (_, Some(false)) | (None, None) => Framing::Close,
            (Some(n), None) => Framing::Length(n),
        }
    };

    out.status(status, res.reason.unwrap_or("").as_bytes(), len)?;
    for header in res.headers.iter() {
        let name = header.name.as_bytes();
        let keep = match header_kind(name) {
            // The body goes through as it came, so its framing stays, whatever `Connection`
            // names: without it the client could not find the body's end.
            Kind::TransferEncoding => framing == Framing::Chunked,
            Kind::ContentLength => true,
            Kind::Connection | Kind::HopByHop => false,
            _ => !named.iter().any(|n| n.eq_ignore_ascii_case(name)),
        };
        if keep {
            out.header(name, header.value)?;
        }
    }
    if close_client || framing == Framing::Close {
        out.close();
    }
    out.end();
    Ok(ParsedResponse::Final(ResponseHead {
        len,
        status,
        framing,
        reusable: !upstream_close && framing != Framing::Close,
    }))
}

/// A status code's three digits (httparse guarantees 100–999).
fn itoa3(status: u16) -> [u8; 3] {
    [
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ]
}

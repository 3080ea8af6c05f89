//! Message heads on the native HTTP/1 path: parsed with httparse, checked, and rewritten into
//! the bytes the other side gets, in one pass. A request this path does not forward itself
//! (HTTP/1.0, absolute-form, hop-by-hop headers to strip, `Expect`, chunked or large bodies,
//! anything malformed) is [`Parsed::Unsupported`]: hyper serves the connection from there on,
//! with the same bytes, and answers it as it always did.

use std::mem::MaybeUninit;
use std::ops::Range;

use crate::proxy::request::headers::Forwarded;

/// Header lines in one head, as hyper takes: a request with more goes to hyper (a 431), a
/// response with more is refused (502). Parsed into an uninitialised array: filling 100
/// slots for every head would cost more than parsing a usual one.
pub(super) const MAX_HEADERS: usize = 100;

/// The largest request body forwarded from the connection's buffer, and only when it came
/// with its head: others stream through hyper, with its body-rate watchdog.
pub const MAX_BUFFERED_BODY: usize = 16 * 1024;

/// A request the native path forwards. Ranges index the connection's read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The head and its body: the bytes this request takes from the buffer.
    pub len: usize,
    pub body_len: usize,
    pub host: Range<usize>,
    /// The target's path, without the query.
    pub path: Range<usize>,
    /// `X-Marathon-App-Id`, trimmed.
    pub app_id: Option<Range<usize>>,
    /// The client asked to close after this response.
    pub close: bool,
    /// A HEAD request: its response has no body, whatever its headers say.
    pub head_method: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes needed.
    Partial,
    /// The upstream's request head (and body) are in `out`.
    Request(RequestHead),
    Unsupported,
}

/// Parses the request at the start of `buf` (a head of at most `max_head` bytes, with its
/// body); on success the upstream request is appended to `out` (`out` is left as it was
/// otherwise).
pub fn request(buf: &[u8], max_head: usize, forwarded: &Forwarded, out: &mut Vec<u8>) -> Parsed {
    let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Unsupported,
    };
    let (Some(method), Some(target), Some(1)) = (req.method, req.path, req.version) else {
        return Parsed::Unsupported;
    };
    if method == "CONNECT" || !target.starts_with('/') {
        return Parsed::Unsupported;
    }
    let mut host = None;
    let mut body_len = None;
    let mut forwarded_for = None;
    let mut app_id = None;
    let mut close = false;
    for header in req.headers.iter() {
        let name = header.name.as_bytes();
        match header_kind(name) {
            Kind::Host => {
                if host.is_some() || !crate::proxy::request::validate::is_host(header.value) {
                    return Parsed::Unsupported;
                }
                host = Some(range_in(buf, header.value));
            }
            Kind::ContentLength => {
                if body_len.is_some() {
                    return Parsed::Unsupported;
                }
                match parse_length(header.value) {
                    Some(n) if n <= MAX_BUFFERED_BODY as u64 => body_len = Some(n as usize),
                    _ => return Parsed::Unsupported,
                }
            }
            Kind::Connection => {
                for token in tokens(header.value) {
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if !token.eq_ignore_ascii_case(b"keep-alive") {
                        // It names headers to strip, or asks for an upgrade: hyper's job.
                        return Parsed::Unsupported;
                    }
                }
            }
            Kind::ForwardedFor => {
                if forwarded_for.is_some() {
                    return Parsed::Unsupported;
                }
                forwarded_for = Some(header.value);
            }
            Kind::AppId => app_id = Some(range_in(buf, trim(header.value))),
            Kind::TransferEncoding | Kind::HopByHop | Kind::Expect => return Parsed::Unsupported,
            Kind::ForwardedOther | Kind::Other => {}
        }
    }
    let Some(host) = host else {
        return Parsed::Unsupported;
    };
    let body_len = body_len.unwrap_or(0);
    if buf.len() < head_len + body_len || head_len > max_head {
        // A body still on its way streams through hyper, under its body-rate watchdog; a
        // head past the limit gets hyper's 431.
        return Parsed::Unsupported;
    }
    let path_start = range_in(buf, target.as_bytes()).start;
    let path_len = target.find('?').unwrap_or(target.len());

    out.reserve(head_len + body_len + 96);
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for header in req.headers.iter() {
        let name = header.name.as_bytes();
        match header_kind(name) {
            Kind::Connection | Kind::ForwardedFor | Kind::ForwardedOther => continue,
            // As hyper's path does (`headers::add_forwarded`): what a client made up goes.
            _ if name.contains(&b'_') => continue,
            _ => {}
        }
        line(out, name, header.value);
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(previous) = forwarded_for.filter(|v| !v.is_empty()) {
        out.extend_from_slice(previous);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(forwarded.client().as_bytes());
    out.extend_from_slice(b"\r\nx-real-ip: ");
    out.extend_from_slice(forwarded.client().as_bytes());
    out.extend_from_slice(b"\r\nx-forwarded-proto: ");
    out.extend_from_slice(forwarded.proto().as_bytes());
    out.extend_from_slice(b"\r\nx-forwarded-port: ");
    out.extend_from_slice(forwarded.port().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&buf[head_len..head_len + body_len]);

    Parsed::Request(RequestHead {
        len: head_len + body_len,
        body_len,
        host,
        path: path_start..path_start + path_len,
        app_id,
        close,
        head_method: method == "HEAD",
    })
}

/// How a response's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    Length(u64),
    /// Chunked, forwarded as it comes; its end is found by [`super::chunked::Scanner`].
    Chunked,
    /// Until the upstream closes: the client's connection closes after it.
    Close,
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

/// Parses the response at the start of `buf` and appends the client's head to `out`:
/// hop-by-hop headers gone (and those `Connection` names), `Connection: close` when
/// `close_client` or the body ends with the upstream's connection.
pub fn response(
    buf: &[u8],
    head_request: bool,
    close_client: bool,
    out: &mut Vec<u8>,
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

    out.reserve(len + 32);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa3(status).as_slice());
    out.push(b' ');
    out.extend_from_slice(res.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
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
            line(out, name, header.value);
        }
    }
    if close_client || framing == Framing::Close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(ParsedResponse::Final(ResponseHead {
        len,
        status,
        framing,
        reusable: !upstream_close && framing != Framing::Close,
    }))
}

#[derive(Clone, Copy)]
enum Kind {
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    ForwardedFor,
    /// `X-Forwarded-Proto`, `-Port` and `X-Real-IP`, set by us; `Forwarded`,
    /// `X-Forwarded-Host` and `X-Client-IP`, dropped (see `headers::add_forwarded`).
    ForwardedOther,
    AppId,
    Expect,
    /// The rest of RFC 9110 §7.6.1's list, `Proxy-Connection` and `HTTP2-Settings`.
    HopByHop,
    Other,
}

/// What a header is to this path, by its name (ASCII case-insensitive). Matched on the length
/// first: most names are none of these and leave after one comparison.
fn header_kind(name: &[u8]) -> Kind {
    let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
    match name.len() {
        2 if is("te") => Kind::HopByHop,
        4 if is("host") => Kind::Host,
        6 if is("expect") => Kind::Expect,
        9 if is("x-real-ip") || is("forwarded") => Kind::ForwardedOther,
        11 if is("x-client-ip") => Kind::ForwardedOther,
        7 if is("upgrade") || is("trailer") => Kind::HopByHop,
        10 if is("connection") => Kind::Connection,
        10 if is("keep-alive") => Kind::HopByHop,
        14 if is("content-length") => Kind::ContentLength,
        14 if is("http2-settings") => Kind::HopByHop,
        15 if is("x-forwarded-for") => Kind::ForwardedFor,
        16 if is("x-forwarded-port") || is("x-forwarded-host") => Kind::ForwardedOther,
        16 if is("proxy-connection") => Kind::HopByHop,
        17 if is("transfer-encoding") => Kind::TransferEncoding,
        17 if is("x-forwarded-proto") => Kind::ForwardedOther,
        17 if is("x-marathon-app-id") => Kind::AppId,
        18 if is("proxy-authenticate") => Kind::HopByHop,
        19 if is("proxy-authorization") => Kind::HopByHop,
        _ => Kind::Other,
    }
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A comma-separated list's items, trimmed, empty ones skipped.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|t| !t.is_empty())
}

fn trim(value: &[u8]) -> &[u8] {
    value.trim_ascii()
}

/// Digits only (no sign, no list), at most 18 of them.
fn parse_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Where `part` (a slice of `buf`) lies in `buf`.
fn range_in(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

/// A status code's three digits (httparse guarantees 100–999).
fn itoa3(status: u16) -> [u8; 3] {
    [
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ]
}

#[cfg(test)]
mod tests;

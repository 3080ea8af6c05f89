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

#[derive(Clone, Copy)]
pub(super) enum Kind {
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
pub(super) fn header_kind(name: &[u8]) -> Kind {
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

/// One header line: `name: value` and CRLF.
pub(in crate::proxy) fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// A comma-separated list's items, trimmed, empty ones skipped.
pub(super) fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|t| !t.is_empty())
}

fn trim(value: &[u8]) -> &[u8] {
    value.trim_ascii()
}

/// Digits only (no sign, no list), at most 18 of them.
pub(super) fn parse_length(value: &[u8]) -> Option<u64> {
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

mod response;

pub use response::{response, ParsedResponse, ResponseHead, ResponseOut};

#[cfg(test)]
mod tests;

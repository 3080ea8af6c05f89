//! Just enough HTTP/1.1, by hand: a bounded request-head reader, Content-Length bodies,
//! keep-alive, and responses written straight to the socket.
//!
//! Why not hyper: Marathon's `/v2/events` answer has no Content-Length and no chunking (the
//! body ends when the connection closes), and some faults need a response that stops short of
//! its Content-Length. hyper chunks a body of unknown length and only hands over the raw
//! connection after a 101/CONNECT, so the simulator owns its sockets instead. Clients are
//! tests and the demo; the parser only needs to be strict about bounds, not complete.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::HeaderMap;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The request line and headers may not exceed this.
pub(super) const MAX_HEAD: usize = 64 * 1024;
/// Request bodies (only login posts have one) may not exceed this.
const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug)]
pub(super) struct Request {
    pub method: String,
    /// The path, undecoded.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// HTTP/1.1 without `Connection: close`.
    pub keep_alive: bool,
}

#[derive(Debug)]
pub(super) enum RequestError {
    /// The client closed or reset the connection, or sent half a head and left.
    Closed,
    /// A request we will not serve: answer with this status and message, then close.
    Reject(u16, &'static str),
}

impl From<io::Error> for RequestError {
    fn from(_: io::Error) -> RequestError {
        RequestError::Closed
    }
}

/// Reads one request. `buf` carries bytes read past the previous request (pipelining).
pub(super) async fn read_request<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> Result<Request, RequestError> {
    let head_len = loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() >= MAX_HEAD {
            return Err(RequestError::Reject(431, "request head too large"));
        }
        buf.reserve(8 * 1024);
        if reader.read_buf(buf).await? == 0 {
            return Err(RequestError::Closed);
        }
    };
    if head_len > MAX_HEAD {
        return Err(RequestError::Reject(431, "request head too large"));
    }
    let mut request = parse_head(&buf[..head_len - 4])?;
    buf.advance(head_len);
    let body_len = body_length(&request.headers)?;
    while buf.len() < body_len {
        buf.reserve(body_len - buf.len());
        if reader.read_buf(buf).await? == 0 {
            return Err(RequestError::Closed);
        }
    }
    request.body = buf.split_to(body_len).freeze();
    Ok(request)
}

fn parse_head(head: &[u8]) -> Result<Request, RequestError> {
    let bad = |why| RequestError::Reject(400, why);
    let mut lines = head.split(|&b| b == b'\n').map(|line| match line {
        [rest @ .., b'\r'] => rest,
        line => line,
    });
    let request_line = lines.next().ok_or(bad("empty request"))?;
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if method.is_empty() || !method.iter().all(u8::is_ascii_uppercase) {
        return Err(bad("malformed method"));
    }
    // Only visible ASCII: the query is echoed into a Location header.
    if target.is_empty() || !target.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(bad("malformed request target"));
    }
    let keep_alive_default = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        _ => return Err(RequestError::Reject(505, "only HTTP/1.x is served")),
    };
    let target = String::from_utf8_lossy(target);
    // Absolute form (`http://host/path`): keep the path.
    let origin = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => &target,
    };
    let (path, query) = match origin.split_once('?') {
        Some((path, query)) => (path, Some(query.to_owned())),
        None => (origin, None),
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(bad("malformed header"))?;
        let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| bad("bad header name"))?;
        let value = HeaderValue::from_bytes(trim(&line[colon + 1..]))
            .map_err(|_| bad("bad header value"))?;
        headers.append(name, value);
    }
    let close = has_token(&headers, &CONNECTION, "close");
    let keep_alive = keep_alive_default && !close;
    Ok(Request {
        method: String::from_utf8_lossy(method).into_owned(),
        path: path.to_owned(),
        query,
        headers,
        body: Bytes::new(),
        keep_alive,
    })
}

fn body_length(headers: &HeaderMap) -> Result<usize, RequestError> {
    if headers.contains_key(TRANSFER_ENCODING) {
        // Chunked uploads are not needed by any Marathon client; ask for a length instead.
        return Err(RequestError::Reject(411, "send a Content-Length"));
    }
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let parsed = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .ok_or(RequestError::Reject(400, "bad Content-Length"))?;
        if length.is_some_and(|l| l != parsed) {
            return Err(RequestError::Reject(400, "conflicting Content-Length"));
        }
        length = Some(parsed);
    }
    match length.unwrap_or(0) {
        len if len > MAX_BODY => Err(RequestError::Reject(413, "request body too large")),
        len => Ok(len),
    }
}

/// A complete response, written with a Content-Length.
#[derive(Debug, Clone)]
pub(super) struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, value: &Value) -> Response {
        let body = serde_json::to_vec(value).unwrap_or_default();
        Response::new(status, "application/json", body)
    }

    /// Marathon's error shape: `{"message": "..."}`.
    pub fn message(status: u16, message: &str) -> Response {
        Response::json(status, &serde_json::json!({ "message": message }))
    }

    /// A Jetty-style HTML error page.
    pub fn html_error(status: u16, message: &str) -> Response {
        let body = format!(
            "<html>\n<head>\n<meta http-equiv=\"Content-Type\" content=\"text/html;charset=utf-8\"/>\n\
             <title>Error {status} {message}</title>\n</head>\n<body><h2>HTTP ERROR {status}</h2>\n\
             <p>Problem accessing this URL. Reason:\n<pre>    {message}</pre></p>\n</body>\n</html>\n"
        );
        Response::new(status, "text/html;charset=utf-8", body)
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// Status line and headers, announcing `content_length` body bytes.
    pub fn head(&self, content_length: usize, close: bool) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {content_length}\r\n"));
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        head.into_bytes()
    }

    /// Head and body in one buffer.
    pub fn to_bytes(&self, close: bool) -> Vec<u8> {
        let mut out = self.head(self.body.len(), close);
        out.extend_from_slice(&self.body);
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// Whether any comma-separated element of any `name` header equals `token` (ASCII case-insensitive,
/// parameters after `;` ignored).
pub(super) fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|element| {
            let mut params = element.split(';').map(str::trim);
            let matches = params.next().is_some_and(|t| t.eq_ignore_ascii_case(token));
            matches && !params.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0"))
        })
}

/// Decoded `key=value` pairs of a query string (`+` is a space, bad escapes stay literal).
pub(super) fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key), percent_decode(value))
        })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push((hi * 16 + lo) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_pipelined_requests_and_bodies() {
        let raw = b"POST /a?x=1 HTTP/1.1\r\nContent-Length: 3\r\nAccept: a\r\nAccept: b\r\n\r\nabcGET /b HTTP/1.1\r\nConnection: close\r\n\r\n";
        let mut reader = &raw[..];
        let mut buf = BytesMut::new();
        let first = read_request(&mut reader, &mut buf).await.unwrap();
        assert_eq!((first.method.as_str(), first.path.as_str()), ("POST", "/a"));
        assert_eq!(first.query.as_deref(), Some("x=1"));
        assert_eq!(&first.body[..], b"abc");
        assert_eq!(first.headers.get_all("accept").iter().count(), 2);
        assert!(first.keep_alive);
        let second = read_request(&mut reader, &mut buf).await.unwrap();
        assert_eq!(second.path, "/b");
        assert!(!second.keep_alive);
        assert!(matches!(
            read_request(&mut reader, &mut buf).await,
            Err(RequestError::Closed)
        ));
    }

    #[tokio::test]
    async fn rejects_oversized_and_malformed_heads() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD + 10, b'a');
        let mut buf = BytesMut::new();
        assert!(matches!(
            read_request(&mut &big[..], &mut buf).await,
            Err(RequestError::Reject(431, _))
        ));
        for raw in [
            &b"GET /a\nb HTTP/1.1\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        ] {
            let mut buf = BytesMut::new();
            assert!(
                matches!(
                    read_request(&mut &raw[..], &mut buf).await,
                    Err(RequestError::Reject(..))
                ),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn decodes_queries() {
        let pairs: Vec<_> = query_pairs(Some("event_type=a%2Cb&x=%zz+y&flag&t=%4")).collect();
        assert_eq!(
            pairs,
            [
                ("event_type".into(), "a,b".into()),
                ("x".into(), "%zz y".into()),
                ("flag".into(), String::new()),
                ("t".into(), "%4".into()),
            ]
        );
    }
}

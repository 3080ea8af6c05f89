//! A bodiless request to a plain HTTP/1 backend, sent by the request's own task over the native
//! path's pooled sockets (`h1::upstream`): its head written in one piece, the response head
//! parsed into a status and header map, and the body read from the socket as the client takes
//! it ([`H1Body`]). hyper's HTTP/1 client would run each upstream connection as a task of its
//! own and hand the request, the response and every body chunk across channels to it; an
//! HTTP/2 client's many streams paid for those hops on every request.

use std::sync::Arc;

use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};

use super::upstream::{Attempt, Dial};
use crate::proxy::h1::upstream::{self as native, ResponseOut};
use crate::upstream::body::RequestBody;
use crate::upstream::h1_body::H1Body;
use crate::upstream::{Endpoint, Exchanged};

/// Whether a request can take this path: bodiless, no upgrade, to a plain HTTP/1 backend
/// (`dial` says so).
pub fn takes(request: &Request<RequestBody>, dial: &Dial<'_>) -> bool {
    use http_body::Body as _;
    dial.native_h1 && request.body().is_end_stream()
}

/// Sends `request` (see [`takes`]) to `endpoint` and reads the response head.
pub async fn send(
    endpoint: &Arc<Endpoint>,
    request: Request<RequestBody>,
    dial: &Dial<'_>,
) -> Attempt {
    let mut bytes = Vec::with_capacity(512);
    write_head(&request, &mut bytes);
    let outgoing = native::Outgoing {
        bytes: &bytes,
        head_request: request.method() == Method::HEAD,
        close_client: false,
        replayable: true,
    };
    let mut head = Head::default();
    let timeouts = (dial.connect_timeout, dial.response_timeout);
    match native::exchange(endpoint, &outgoing, &mut head, timeouts).await {
        native::Attempt::Answered(answer) => {
            let native::Answer {
                stream,
                buf,
                head: parsed,
            } = answer;
            let body = H1Body::new(
                stream,
                buf,
                parsed.len,
                parsed.framing,
                parsed.reusable,
                endpoint.clone(),
            );
            let mut response = Response::new(body);
            *response.status_mut() = head.status;
            *response.headers_mut() = head.headers;
            if let Some(reason) = head.reason {
                response.extensions_mut().insert(reason);
            }
            let response = response.map(http_body_util::Either::Right);
            Attempt::Response(response, Exchanged::Native)
        }
        native::Attempt::NotSent(err) => Attempt::NotSent(request, err),
        native::Attempt::Failed(err) => Attempt::Failed(err),
    }
}

/// The request's HTTP/1.1 head. Its target is already in origin form and its headers are the
/// upstream's (`rewrite::request`); a bodiless request whose method expects a body says so
/// with `Content-Length: 0`, as hyper's client does.
fn write_head(request: &Request<RequestBody>, out: &mut Vec<u8>) {
    out.extend_from_slice(request.method().as_str().as_bytes());
    out.push(b' ');
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let headers = request.headers();
    for (name, value) in headers {
        native::header_line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let expects_body = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH
    );
    if expects_body
        && !headers.contains_key(header::CONTENT_LENGTH)
        && !headers.contains_key(header::TRANSFER_ENCODING)
    {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The response head as hyper's engine takes it.
#[derive(Default)]
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    /// A reason phrase other than the status's usual one, which an HTTP/1 client gets as it
    /// came (as through hyper's client).
    reason: Option<hyper::ext::ReasonPhrase>,
}

impl ResponseOut for Head {
    fn status(&mut self, status: u16, reason: &[u8], _head_len: usize) -> Result<(), &'static str> {
        self.status = StatusCode::from_u16(status).map_err(|_| "unparsable response head")?;
        let usual = self.status.canonical_reason().map(str::as_bytes);
        if usual != Some(reason) {
            self.reason = hyper::ext::ReasonPhrase::try_from(reason).ok();
        }
        Ok(())
    }

    fn header(&mut self, name: &[u8], value: &[u8]) -> Result<(), &'static str> {
        // hyper frames the body for its client itself: chunked is decoded here.
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Ok(());
        }
        let name = HeaderName::from_bytes(name).map_err(|_| "bad header name")?;
        let value = HeaderValue::from_bytes(value).map_err(|_| "bad header value")?;
        self.headers.append(name, value);
        Ok(())
    }

    fn close(&mut self) {}

    fn end(&mut self) {}
}

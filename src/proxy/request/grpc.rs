//! gRPC as the proxy sees it: whether a request is a call, the status a response carries
//! (in its trailers, or its head for a Trailers-Only response), and the balancer's own answers
//! to a call, which a gRPC client reads as a status rather than an HTTP error page.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;

pub static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

pub const UNKNOWN: u8 = 2;
pub const DEADLINE_EXCEEDED: u8 = 4;
pub const PERMISSION_DENIED: u8 = 7;
pub const INTERNAL: u8 = 13;
pub const UNAVAILABLE: u8 = 14;

/// Whether a request is a gRPC call: `content-type: application/grpc`, alone or with a
/// `+format` or parameters (gRPC-Web's `application/grpc-web…` is not: its clients read
/// HTTP statuses).
pub fn is_call(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.len() >= 16
            && v[..16].eq_ignore_ascii_case(b"application/grpc")
            && matches!(v.get(16), None | Some(b'+' | b';' | b' '))
    })
}

/// The status in a header map (trailers, or a Trailers-Only head): a code gRPC does not
/// define counts as UNKNOWN, as clients read it.
pub fn status(headers: &HeaderMap) -> Option<u8> {
    let value = headers.get(&GRPC_STATUS)?;
    Some(
        std::str::from_utf8(value.as_bytes())
            .ok()
            .and_then(|v| v.trim().parse::<u8>().ok())
            .filter(|&code| usize::from(code) < crate::metrics::GRPC_CODES.len())
            .unwrap_or(UNKNOWN),
    )
}

/// The balancer's own answer to a call: a Trailers-Only response (HTTP 200, the status and a
/// message naming the cause in its head, no body).
pub fn answer<B>(code: u8, message: &'static str) -> Response<B>
where
    B: From<Full<Bytes>>,
{
    let mut response = Response::new(B::from(Full::new(Bytes::new())));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(GRPC_STATUS.clone(), HeaderValue::from(u16::from(code)));
    // Plain ASCII without `%`: already what grpc-message's percent-encoding would give.
    headers.insert(GRPC_MESSAGE.clone(), HeaderValue::from_static(message));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_told_by_their_content_type() {
        let with = |ct: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            is_call(&h)
        };
        for ct in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC;charset=utf-8",
        ] {
            assert!(with(ct), "{ct}");
        }
        for ct in ["application/grpc-web", "application/grpcx", "text/plain"] {
            assert!(!with(ct), "{ct}");
        }
        assert!(!is_call(&HeaderMap::new()));
    }

    #[test]
    fn statuses_grpc_does_not_define_are_unknown() {
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(GRPC_STATUS.clone(), HeaderValue::from_static(v));
            status(&h)
        };
        assert_eq!(with("0"), Some(0));
        assert_eq!(with("16"), Some(16));
        assert_eq!(with("17"), Some(UNKNOWN));
        assert_eq!(with("x"), Some(UNKNOWN));
        assert_eq!(status(&HeaderMap::new()), None);
    }
}

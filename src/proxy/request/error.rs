//! Proxy errors and the one place they become HTTP statuses (and gRPC statuses, for a call).

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::Full;

use super::grpc;
use crate::upstream::body::ClientBodyError;

/// Why a request could not be proxied. Messages are for logs; clients get [`ProxyError::status`]
/// and a short body that names no internals.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no route for this host and path")]
    NoRoute,
    #[error("no healthy endpoint")]
    NoEndpoint,
    #[error("connecting to {addr} failed: {source}")]
    Connect {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("connecting to {0} timed out")]
    ConnectTimeout(std::net::SocketAddr),
    #[error("the TLS handshake with {addr} failed: {source}")]
    Tls {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("upstream {addr} failed: {source}")]
    Upstream {
        addr: std::net::SocketAddr,
        #[source]
        source: hyper::Error,
    },
    /// The client's request body broke or stalled on its way to an HTTP/2 backend.
    #[error("{0}")]
    ClientBody(#[source] ClientBodyError),
    #[error("upstream {addr} failed: {source}")]
    UpstreamIo {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("upstream {0} sent an unusable response: {1}")]
    InvalidResponse(std::net::SocketAddr, &'static str),
    #[error("upstream {0} did not answer in time")]
    UpstreamTimeout(std::net::SocketAddr),
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("forbidden by the app's network ACL")]
    Forbidden,
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute | ProxyError::NoEndpoint => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Upstream { source, .. } => match client_body_error(source) {
                Some(err) => client_body_status(err),
                None => StatusCode::BAD_GATEWAY,
            },
            ProxyError::ClientBody(err) => client_body_status(err),
            ProxyError::Connect { .. }
            | ProxyError::Tls { .. }
            | ProxyError::UpstreamIo { .. }
            | ProxyError::InvalidResponse(..) => StatusCode::BAD_GATEWAY,
            ProxyError::ConnectTimeout(_) | ProxyError::UpstreamTimeout(_) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::Forbidden => StatusCode::FORBIDDEN,
        }
    }

    /// The gRPC status and message a call gets instead of [`ProxyError::status`].
    pub fn grpc_status(&self) -> (u8, &'static str) {
        use grpc::{DEADLINE_EXCEEDED, INTERNAL, PERMISSION_DENIED, UNAVAILABLE};
        match self {
            ProxyError::NoRoute => (UNAVAILABLE, "no backend for this host and path"),
            ProxyError::NoEndpoint => (UNAVAILABLE, "the backend has no routable task"),
            ProxyError::Connect { .. } => (UNAVAILABLE, "the backend refused the connection"),
            ProxyError::ConnectTimeout(_) => (UNAVAILABLE, "connecting to the backend timed out"),
            ProxyError::Tls { .. } => (UNAVAILABLE, "the TLS handshake with the backend failed"),
            ProxyError::UpstreamTimeout(_) => {
                (DEADLINE_EXCEEDED, "the backend did not answer in time")
            }
            ProxyError::Upstream { .. } | ProxyError::ClientBody(_) => match self.status() {
                StatusCode::REQUEST_TIMEOUT => (DEADLINE_EXCEEDED, "the request body stalled"),
                StatusCode::BAD_REQUEST => (INTERNAL, "the request body was malformed"),
                _ => (UNAVAILABLE, "the backend failed"),
            },
            ProxyError::UpstreamIo { .. } => (UNAVAILABLE, "the backend failed"),
            ProxyError::InvalidResponse(..) => {
                (UNAVAILABLE, "the backend sent an unusable response")
            }
            ProxyError::BadRequest(why) => (INTERNAL, why),
            ProxyError::Forbidden => (PERMISSION_DENIED, "forbidden by the app's network ACL"),
        }
    }

    /// The response a gRPC call sees: a Trailers-Only response with [`ProxyError::grpc_status`].
    pub fn grpc_response<B>(&self) -> Response<B>
    where
        B: From<Full<Bytes>>,
    {
        let (code, message) = self.grpc_status();
        grpc::answer(code, message)
    }

    /// The response a client sees.
    pub fn response<B>(&self) -> Response<B>
    where
        B: From<Full<Bytes>>,
    {
        let mut response = status_response(self.status());
        if closes_connection(response.status()) {
            // HTTP/2 drops the header.
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

/// The client's answer when its request body broke: 408 when it stalled, 400 when it was
/// malformed (a bad chunk).
fn client_body_status(err: &ClientBodyError) -> StatusCode {
    match err {
        ClientBodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
        ClientBodyError::Read(_) => StatusCode::BAD_REQUEST,
    }
}

/// The client-side cause of an upstream failure: the request body stalled or was malformed
/// (a bad chunk), so the upstream request was aborted through no fault of the upstream.
fn client_body_error(err: &hyper::Error) -> Option<&ClientBodyError> {
    let mut cause = std::error::Error::source(err);
    while let Some(err) = cause {
        if let Some(found) = err.downcast_ref::<ClientBodyError>() {
            return Some(found);
        }
        cause = err.source();
    }
    None
}

/// Whether our answer with this status ends the connection (HTTP/1): after a malformed or
/// stalled request the rest of the connection's bytes cannot be trusted to start a request.
pub fn closes_connection(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::REQUEST_TIMEOUT
    )
}

/// The body of our own answer for a status: `503 Service Unavailable\n`.
pub fn status_text(status: StatusCode) -> String {
    format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    )
}

/// A short plain-text response for a status: [`status_text`].
pub fn status_response<B>(status: StatusCode) -> Response<B>
where
    B: From<Full<Bytes>>,
{
    let text = status_text(status);
    let mut response = Response::new(B::from(Full::new(Bytes::from(text))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    response
}

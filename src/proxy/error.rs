//! Proxy errors and the one place they become HTTP statuses.

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::Full;

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
    #[error("upstream {addr} failed: {source}")]
    Upstream {
        addr: std::net::SocketAddr,
        #[source]
        source: hyper::Error,
    },
    #[error("upstream {0} sent a response with ambiguous framing: {1}")]
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
            ProxyError::Connect { .. }
            | ProxyError::Upstream { .. }
            | ProxyError::InvalidResponse(..) => StatusCode::BAD_GATEWAY,
            ProxyError::ConnectTimeout(_) | ProxyError::UpstreamTimeout(_) => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::Forbidden => StatusCode::FORBIDDEN,
        }
    }

    /// The response a client sees.
    pub fn response<B>(&self) -> Response<B>
    where
        B: From<Full<Bytes>>,
    {
        status_response(self.status())
    }
}

/// A short plain-text response for a status: `503 Service Unavailable\n`.
pub fn status_response<B>(status: StatusCode) -> Response<B>
where
    B: From<Full<Bytes>>,
{
    let text = format!(
        "{} {}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
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

//! The event stream: `GET /v2/events` with exactly `Accept: text/event-stream`, one
//! `event_type` parameter per event that can change routing, and `plan-format=light`.
//!
//! `eventsource-client` parses the stream (CR, LF and CRLF line ends, split anywhere); the
//! transport under it is ours, on reqwest, for three reasons: the same TLS roots as the REST
//! calls, a read timeout that catches a stalled stream (Marathon writes a CRLF every 10 s), and
//! Marathon's 302 from a standby, which the crate does not follow (it follows 301 and 307
//! only) and reqwest would follow without the auth header.

use std::time::Duration;

use bytes::Bytes;
use eventsource_client::{self as es, Client as _};
use futures_util::{StreamExt, TryStreamExt};
use launchdarkly_sdk_transport::{
    ByteStream, HttpTransport, Request, ResponseFuture, TransportError,
};
use reqwest::header::{HeaderValue, AUTHORIZATION, LOCATION};
use reqwest::StatusCode;

use super::client::{describe, ConfigError, MarathonClient};

/// The events that can change what is routed (the spec's §2.6 list): Marathon-LB's three, plus
/// deletions, instance and health changes of Marathon 1.4+, and finished deployments.
pub const ROUTING_EVENTS: &[&str] = &[
    "api_post_event",
    "status_update_event",
    "health_status_changed_event",
    "instance_changed_event",
    "instance_health_changed_event",
    "app_terminated_event",
    "deployment_success",
    "deployment_failed",
];

/// Why a stream could not be opened or ended.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: the stream stalled (no bytes for {0:?})", .stall)]
    Stalled { url: String, stall: Duration },
    #[error("{url}: the stream broke: {reason}")]
    Broken { url: String, reason: String },
}

impl StreamError {
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, StreamError::Status { status: 401, .. })
    }
}

/// An open event stream.
pub struct EventStream {
    inner: std::pin::Pin<Box<dyn futures_util::Stream<Item = es::Result<es::SSE>> + Send>>,
    url: String,
    stall: Duration,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventStream({})", self.url)
    }
}

impl EventStream {
    /// The URL connected to (without credentials).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next event (its type and data); `Ok(None)` when Marathon closed the stream.
    pub async fn next_event(&mut self) -> Result<Option<es::Event>, StreamError> {
        loop {
            match self.inner.next().await {
                None | Some(Err(es::Error::Eof)) => return Ok(None),
                Some(Ok(es::SSE::Event(event))) => return Ok(Some(event)),
                Some(Ok(_)) => continue,
                Some(Err(err)) => return Err(self.error(err)),
            }
        }
    }

    fn error(&self, err: es::Error) -> StreamError {
        let url = self.url.clone();
        match err {
            es::Error::UnexpectedResponse(response, _) => StreamError::Status {
                url,
                status: response.status(),
            },
            es::Error::Transport(err) if is_timeout(&err) => StreamError::Stalled {
                url,
                stall: self.stall,
            },
            other => StreamError::Broken {
                url,
                reason: other.to_string(),
            },
        }
    }
}

fn is_timeout(err: &TransportError) -> bool {
    err.inner()
        .downcast_ref::<reqwest::Error>()
        .is_some_and(|e| e.is_timeout())
}

impl MarathonClient {
    /// A client for the event stream: same TLS, no overall timeout, a read timeout of `stall`.
    pub fn stream_http(&self, stall: Duration) -> Result<reqwest::Client, ConfigError> {
        self.tls
            .apply(reqwest::Client::builder())
            .read_timeout(stall)
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))
    }

    /// Opens `/v2/events` on URL `index` (following one redirect to the leader) and returns
    /// once Marathon answered 200. A 401 makes the next call log in again.
    pub async fn subscribe(
        &self,
        index: usize,
        http: &reqwest::Client,
        stall: Duration,
    ) -> Result<EventStream, StreamError> {
        let base = &self.bases[index % self.bases.len()];
        let shown = format!("{}/v2/events", base.shown);
        let connect_error = |reason: String| StreamError::Connect {
            url: shown.clone(),
            reason,
        };
        let mut url = base.url.clone();
        let path = format!("{}/v2/events", url.path().trim_end_matches('/'));
        url.set_path(&path);
        {
            let mut query = url.query_pairs_mut();
            query.clear().append_pair("plan-format", "light");
            for event in ROUTING_EVENTS {
                query.append_pair("event_type", event);
            }
        }
        let header = self
            .auth
            .header()
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        let mut builder = es::ClientBuilder::for_url(url.as_str())
            .map_err(|e| connect_error(e.to_string()))?
            .reconnect(es::ReconnectOptions::reconnect(false).build())
            .redirect_limit(0);
        if let Some(value) = &header {
            let value = value.to_str().map_err(|e| connect_error(e.to_string()))?;
            builder = builder
                .header(AUTHORIZATION.as_str(), value)
                .map_err(|_| connect_error("the auth header is invalid".to_owned()))?;
        }
        let client = builder.build_with_transport(Transport { http: http.clone() });
        let mut stream = EventStream {
            inner: Box::pin(client.stream()),
            url: shown.clone(),
            stall,
        };
        match stream.inner.next().await {
            Some(Ok(es::SSE::Connected(_))) => Ok(stream),
            Some(Err(err)) => {
                let err = stream.error(err);
                if err.is_unauthorized() {
                    self.auth.rejected(header.as_ref()).await;
                }
                Err(err)
            }
            _ => Err(connect_error("closed before answering".to_owned())),
        }
    }
}

/// `eventsource-client`'s transport on reqwest, following one redirect with the same headers.
#[derive(Clone)]
struct Transport {
    http: reqwest::Client,
}

impl HttpTransport for Transport {
    fn request(&self, request: Request<Option<Bytes>>) -> ResponseFuture {
        let http = self.http.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let mut url =
                reqwest::Url::parse(&parts.uri.to_string()).map_err(TransportError::new)?;
            let send = |url: reqwest::Url| {
                let mut builder = http
                    .request(parts.method.clone(), url)
                    .headers(parts.headers.clone());
                if let Some(body) = body.clone() {
                    builder = builder.body(body);
                }
                builder.send()
            };
            let mut response = send(url.clone()).await.map_err(transport_error)?;
            // Marathon 1.7+ standbys answer 302 with the leader's absolute URL.
            if response.status().is_redirection() {
                if let Some(next) = location(&url, response.headers().get(LOCATION)) {
                    url = next;
                    response = send(url).await.map_err(transport_error)?;
                }
            }
            let mut builder = http::Response::builder().status(response.status());
            if let Some(headers) = builder.headers_mut() {
                *headers = response.headers().clone();
            }
            let status = response.status();
            let body: ByteStream = if status == StatusCode::OK {
                Box::pin(response.bytes_stream().map_err(transport_error))
            } else {
                // The error body is not read: the status says enough.
                Box::pin(futures_util::stream::empty())
            };
            builder.body(body).map_err(TransportError::new)
        })
    }
}

fn transport_error(err: reqwest::Error) -> TransportError {
    if err.is_timeout() {
        TransportError::new(err)
    } else {
        TransportError::new(std::io::Error::other(describe(&err)))
    }
}

/// The redirect target, absolute or relative to `current`; only http(s).
fn location(current: &reqwest::Url, value: Option<&HeaderValue>) -> Option<reqwest::Url> {
    let next = current.join(value?.to_str().ok()?).ok()?;
    matches!(next.scheme(), "http" | "https").then_some(next)
}

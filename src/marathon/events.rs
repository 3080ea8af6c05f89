//! The event stream: `GET /v2/events` with exactly `Accept: text/event-stream`, one
//! `event_type` parameter per event that can change routing, and `plan-format=light`.
//!
//! `eventsource-client` parses the stream (CR, LF and CRLF line ends, split anywhere); the
//! request is ours, on reqwest, for four reasons: the same TLS roots as the REST calls, a read
//! timeout that catches a stalled stream (Marathon writes a CRLF every 10 s), Marathon's 302
//! from a standby, which the crate does not follow (it follows 301 and 307 only) and reqwest
//! would follow without the auth header, and failed connects reported once by the caller, not
//! warned about by the crate on every attempt.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use eventsource_client::{self as es, Client as _};
use futures_util::{StreamExt, TryStreamExt};
use launchdarkly_sdk_transport::{
    ByteStream, HttpTransport, Request, ResponseFuture, TransportError,
};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CACHE_CONTROL, LOCATION};
use reqwest::{Client as ReqwestClient, StatusCode};

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
            es::Error::TimedOut => StreamError::Stalled {
                url,
                stall: self.stall,
            },
            // Our own description of what reqwest saw, without the crates' prefixes.
            es::Error::Transport(err) => StreamError::Broken {
                url,
                reason: err.inner().to_string(),
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
    pub fn stream_http(&self, stall: Duration) -> Result<ReqwestClient, ConfigError> {
        self.tls
            .apply(reqwest::Client::builder())
            .read_timeout(stall)
            .build()
            .map_err(|e| ConfigError::Client(e.to_string()))
    }

    /// Opens `/v2/events` on URL `index` (following one redirect to the leader) and returns
    /// once Marathon answered 200. A 401 makes the next call log in again.
    ///
    /// The request is ours and `eventsource-client` is handed the open response: it only
    /// parses the stream. A failed connect is then this function's error, said once by the
    /// caller, rather than a warning of the crate's on every attempt.
    pub async fn subscribe(
        &self,
        index: usize,
        http: &ReqwestClient,
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
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Some(value) = &header {
            headers.insert(AUTHORIZATION, value.clone());
        }
        let response = open(http, url.clone(), &headers)
            .await
            .map_err(|err| connect_error(describe(&err)))?;
        let status = response.status();
        if status != StatusCode::OK {
            if status == StatusCode::UNAUTHORIZED {
                self.auth.rejected(header.as_ref()).await;
            }
            return Err(StreamError::Status {
                url: shown,
                status: status.as_u16(),
            });
        }
        let client = es::ClientBuilder::for_url(url.as_str())
            .map_err(|e| connect_error(e.to_string()))?
            .reconnect(es::ReconnectOptions::reconnect(false).build())
            .redirect_limit(0)
            .build_with_transport(Opened::new(response));
        let mut stream = EventStream {
            inner: Box::pin(client.stream()),
            url: shown.clone(),
            stall,
        };
        match stream.inner.next().await {
            Some(Ok(es::SSE::Connected(_))) => Ok(stream),
            Some(Err(err)) => Err(stream.error(err)),
            _ => Err(connect_error("closed before answering".to_owned())),
        }
    }
}

/// `GET url` with `headers`, following one redirect with the same headers: Marathon 1.7+
/// standbys answer 302 with the leader's absolute URL, which `eventsource-client` does not
/// follow and reqwest would follow without the auth header.
async fn open(
    http: &ReqwestClient,
    url: reqwest::Url,
    headers: &HeaderMap,
) -> Result<reqwest::Response, reqwest::Error> {
    let send = |url: reqwest::Url| http.get(url).headers(headers.clone()).send();
    let response = send(url.clone()).await?;
    if response.status().is_redirection() {
        if let Some(next) = location(&url, response.headers().get(LOCATION)) {
            return send(next).await;
        }
    }
    Ok(response)
}

/// `eventsource-client`'s transport: the response [`open`] got, handed over once (the crate
/// never reconnects by itself here).
#[derive(Clone)]
struct Opened {
    response: Arc<Mutex<Option<reqwest::Response>>>,
}

impl Opened {
    fn new(response: reqwest::Response) -> Opened {
        Opened {
            response: Arc::new(Mutex::new(Some(response))),
        }
    }
}

impl HttpTransport for Opened {
    fn request(&self, _request: Request<Option<Bytes>>) -> ResponseFuture {
        let taken = self.response.lock().ok().and_then(|mut r| r.take());
        Box::pin(async move {
            let response = taken.ok_or_else(|| {
                TransportError::new(std::io::Error::other("the stream was already opened"))
            })?;
            let mut builder = http::Response::builder().status(response.status());
            if let Some(headers) = builder.headers_mut() {
                *headers = response.headers().clone();
            }
            let body: ByteStream = Box::pin(response.bytes_stream().map_err(transport_error));
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

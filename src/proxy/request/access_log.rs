//! The access log (`--access-log`): one line per request, routed or not, written once its
//! response has been sent (or the client left), at target [`crate::logs::ACCESS`]. Both
//! engines fill the same [`Line`] (a gRPC response's status from its head or trailers);
//! `logs.rs` writes every field, `-`/`null` where there is no
//! value. Nothing here is made without `--access-log`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, Method, Version};
use http_body::{Body, Frame, SizeHint};

use crate::proxy::Frontend;
use crate::routing::Backend;

/// The request's side of the line, taken when its head is read, before its bytes move on.
#[derive(Debug)]
pub struct RequestLog {
    pub client: SocketAddr,
    pub frontend: Frontend,
    /// When the head was read.
    pub started: Instant,
    pub method: Method,
    /// As the client named it (`Host`, or the target's authority), port included.
    pub host: Option<String>,
    pub path: String,
    pub query: Option<String>,
    pub protocol: &'static str,
    pub user_agent: Option<String>,
    pub referer: Option<String>,
}

impl RequestLog {
    /// From a request hyper parsed, just read.
    pub fn of<B>(request: &http::Request<B>, client: SocketAddr, frontend: Frontend) -> RequestLog {
        let headers = request.headers();
        let header = |name| headers.get(name).map(|v| lossy(v.as_bytes()));
        let uri = request.uri();
        RequestLog {
            client,
            frontend,
            started: Instant::now(),
            method: request.method().clone(),
            host: uri
                .authority()
                .map(|a| a.as_str().to_owned())
                .or_else(|| header(header::HOST)),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            protocol: protocol(request.version()),
            user_agent: header(header::USER_AGENT),
            referer: header(header::REFERER),
        }
    }

    /// The line of this request, now that its response head is ready.
    pub fn answered(self: Box<Self>, answer: Answer, bytes_in: BytesIn) -> Box<Line> {
        Box::new(Line {
            response_time: self.started.elapsed(),
            request: self,
            answer,
            bytes_in,
            grpc_status: None,
        })
    }
}

/// How nginx and HAProxy name a protocol version.
pub fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Request body bytes: known when the line is made, or counted as the body streams upstream.
#[derive(Debug)]
pub enum BytesIn {
    Read(u64),
    Counted(Arc<AtomicU64>),
}

/// How the request was answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// `None`: no backend (unrouted, or refused before routing).
    pub backend: Option<Arc<Backend>>,
    /// The endpoint that answered, if one did.
    pub endpoint: Option<SocketAddr>,
}

/// A line waiting for the end of its response.
#[derive(Debug)]
pub struct Line {
    request: Box<RequestLog>,
    answer: Answer,
    /// From the request's head to the response's.
    response_time: Duration,
    bytes_in: BytesIn,
    /// A gRPC response's status: from its head (Trailers-Only, or the balancer's own answer)
    /// or its trailers.
    grpc_status: Option<u8>,
}

impl Line {
    /// The gRPC status the response carries in its head.
    pub fn set_grpc_status(&mut self, code: Option<u8>) {
        self.grpc_status = code;
    }

    /// Writes the line: `bytes_out` response body bytes went to the client.
    pub fn write(&self, bytes_out: u64) {
        let RequestLog {
            client,
            frontend,
            started,
            method,
            host,
            path,
            query,
            protocol,
            user_agent,
            referer,
        } = &*self.request;
        let answer = &self.answer;
        let bytes_in = match &self.bytes_in {
            BytesIn::Read(n) => *n,
            BytesIn::Counted(n) => n.load(Ordering::Relaxed),
        };
        // Values the proxy made or checked are shown bare (`display`); what a client wrote is
        // a string, quoted and escaped in text.
        tracing::info!(
            target: crate::logs::ACCESS,
            client = display(client),
            listener = display(frontend.listener_label()),
            port = frontend.port(),
            method = display(method),
            host = host.as_deref(),
            path = path.as_str(),
            query = query.as_deref(),
            protocol = display(protocol),
            status = answer.status,
            grpc_status = self.grpc_status,
            bytes_in,
            bytes_out,
            duration_ms = millis(started.elapsed()),
            response_ms = millis(self.response_time),
            backend = answer.backend.as_ref().map(|b| display(&b.name)),
            endpoint = answer.endpoint.map(display),
            referer = referer.as_deref(),
            user_agent = user_agent.as_deref(),
        );
    }
}

/// Milliseconds, to the microsecond.
fn millis(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}

/// A line and the response body bytes sent so far: written when dropped, so that a response
/// cut short (by the client or the upstream) is logged with what it sent.
#[derive(Debug, Default)]
pub struct Pending {
    line: Option<Box<Line>>,
    sent: u64,
}

impl Pending {
    pub fn new(line: Option<Box<Line>>) -> Pending {
        Pending { line, sent: 0 }
    }

    /// The status a gRPC response's trailers carry.
    pub fn grpc_status(&mut self, code: u8) {
        if let Some(line) = &mut self.line {
            line.grpc_status = Some(code);
        }
    }

    pub fn sent(&mut self, bytes: usize) {
        self.sent += bytes as u64;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(line) = self.line.take() {
            line.write(self.sent);
        }
    }
}

/// A response body (hyper's engine) that counts what it hands to hyper and writes its line
/// when hyper lets go of it: after the last frame, or when the client left.
pub struct LoggedBody<B> {
    body: B,
    pending: Pending,
}

impl<B> LoggedBody<B> {
    pub fn new(body: B, line: Option<Box<Line>>) -> LoggedBody<B> {
        LoggedBody {
            body,
            pending: Pending::new(line),
        }
    }
}

impl<B> Body for LoggedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if this.pending.line.is_some() {
            if let Poll::Ready(Some(Ok(frame))) = &frame {
                match frame.trailers_ref().map(super::grpc::status) {
                    Some(Some(code)) => this.pending.grpc_status(code),
                    Some(None) => {}
                    None => this.pending.sent(frame.data_ref().map_or(0, Bytes::len)),
                }
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

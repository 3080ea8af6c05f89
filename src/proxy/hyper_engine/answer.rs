//! How hyper's engine ends a request: the answer counted (the backend's counters, or
//! `unrouted`'s), its access-log line made, an error turned into its response (a gRPC status
//! for a call).

use std::sync::Arc;

use http::header::HeaderValue;
use http::{Request, Response};
use hyper::body::Incoming;

use super::{routing_host, Downstream, ServedBy};
use crate::proxy::request::access_log::{Answer, BytesIn, Line, RequestLog};
use crate::proxy::request::account;
use crate::proxy::request::body::ProxyBody;
use crate::proxy::request::error::ProxyError;
use crate::routing::Backend;

/// A request that found no backend (no route, or refused before routing): counted as
/// `backend="unrouted"`, its host listed for `/stats` when nothing routes it, and answered.
#[cold]
pub(super) fn unrouted(
    down: &Downstream,
    request: &Request<Incoming>,
    err: ProxyError,
    logged: Option<Box<RequestLog>>,
    grpc: bool,
) -> (Response<ProxyBody>, Option<Box<Line>>) {
    tracing::debug!(client = %down.client, error = %err, "request failed");
    let frontend = down.frontend;
    let status = err.status().as_u16();
    down.ctx.unrouted.request(frontend.metrics_kind(), status);
    if matches!(err, ProxyError::NoRoute) {
        let host = routing_host(down, request).ok().flatten();
        let raw = host.as_ref().map_or(&b""[..], HeaderValue::as_bytes);
        let host = crate::model::vhost::host_part(raw).unwrap_or(raw);
        let unrouted = &down.ctx.metrics.unrouted_hosts;
        unrouted.record(frontend.listener_label(), host);
    }
    let answer = Answer {
        status,
        backend: None,
        endpoint: None,
    };
    let mut line = logged.map(|request| request.answered(answer, BytesIn::Read(0)));
    if grpc {
        let (code, _) = err.grpc_status();
        down.ctx.unrouted.grpc_status(code);
        if let Some(line) = &mut line {
            line.set_grpc_status(Some(code));
        }
        return (err.grpc_response(), line);
    }
    (err.response(), line)
}

/// Counts the answer and makes its access-log line (as the native engine does), and turns an
/// error into its response.
pub(super) fn account(
    down: &Downstream,
    backend: Arc<Backend>,
    elapsed: std::time::Duration,
    logged: Option<(Box<RequestLog>, Option<BytesIn>)>,
    answer: Result<Response<ProxyBody>, ProxyError>,
    grpc: bool,
) -> (Response<ProxyBody>, Option<Box<Line>>) {
    let status = match &answer {
        Ok(response) => response.status().as_u16(),
        Err(err) => err.status().as_u16(),
    };
    account::account(down.frontend, &backend, status, elapsed);
    // A gRPC status known now: the balancer's answer, or a Trailers-Only response's.
    let grpc_status = match &answer {
        Err(err) if grpc => Some(err.grpc_status().0),
        Err(_) => None,
        Ok(response) => crate::proxy::request::grpc::status(response.headers()),
    };
    if let (Err(_), Some(code)) = (&answer, grpc_status) {
        backend.metrics.grpc_status(code);
    }
    let line = logged.map(|(request, bytes_in)| {
        let served_by = answer.as_ref().ok().and_then(|r| r.extensions().get());
        let endpoint = served_by.map(|ServedBy(addr)| *addr);
        let backend = Some(backend);
        let answered = Answer {
            status,
            backend,
            endpoint,
        };
        let mut line = request.answered(answered, bytes_in.unwrap_or(BytesIn::Read(0)));
        line.set_grpc_status(grpc_status);
        line
    });
    let response = answer.unwrap_or_else(|err| {
        tracing::debug!(client = %down.client, error = %err, "request failed");
        if grpc {
            return err.grpc_response();
        }
        err.response()
    });
    (response, line)
}

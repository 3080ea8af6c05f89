//! The admin port: Marathon-LB's endpoints (`/_haproxy_health_check`, the vhost and app maps,
//! the config, the signal endpoints), ours (`/healthz`, `/readyz`, `/routes`, `/stats`,
//! `/metrics`) and the status page. It never shares a port with traffic.

mod maps;
mod page;
mod stats;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::marathon::StreamStatus;
use crate::report::RoutesReport;
use crate::routing::SharedTable;

pub use stats::Stats;

use crate::serve::ReadStatus;

/// What the admin endpoints read and the signals they send.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub table: SharedTable,
    /// `/_mlb_signal/hup`: read the source (and the certificates) again.
    pub reload: Arc<Notify>,
    pub cert_reload: Arc<Notify>,
    /// `/_mlb_signal/usr1`: rebuild the table from the last snapshot.
    pub rebuild: Arc<Notify>,
    pub stream: watch::Receiver<StreamStatus>,
    pub read_status: watch::Receiver<ReadStatus>,
    pub metrics: Arc<crate::metrics::Metrics>,
}

pub async fn run(listener: TcpListener, state: AdminState, stop: CancellationToken) {
    // Handed to a successor on a binary upgrade while this loop runs.
    let listener = std::sync::Arc::new(listener);
    let _offered = crate::upgrade::offer(&listener);
    tokio::select! {
        () = crate::upgrade::until_accepting() => {}
        () = stop.cancelled() => return,
    }
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors (EMFILE): back off instead of spinning on accept.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, state.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";

async fn answer(
    request: Request<Incoming>,
    state: AdminState,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let table = state.table.load();
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (_, "/") => (StatusCode::OK, HTML, page::html(&table)),
        (_, "/_haproxy_health_check" | "/healthz") => (StatusCode::OK, TEXT, "OK\n".to_owned()),
        (_, "/readyz") if table.generation() > 0 => (StatusCode::OK, TEXT, "ready\n".to_owned()),
        (_, "/readyz") => (
            StatusCode::SERVICE_UNAVAILABLE,
            TEXT,
            "not ready: no routing table built from the source yet\n".to_owned(),
        ),
        (_, "/generation") => (StatusCode::OK, TEXT, format!("{}\n", table.generation())),
        (_, "/_haproxy_getvhostmap") => (StatusCode::OK, TEXT, maps::vhost_map(&table)),
        (_, "/_haproxy_getappmap") => (StatusCode::OK, TEXT, maps::app_map(&table)),
        (_, "/_haproxy_getconfig") => (StatusCode::OK, TEXT, RoutesReport::new(&table).to_text()),
        (_, "/routes") => match serde_json::to_string_pretty(&RoutesReport::new(&table)) {
            Ok(json) => (StatusCode::OK, JSON, json),
            Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, TEXT, format!("{err}\n")),
        },
        (_, "/metrics") => {
            let stream = state.stream.borrow().clone();
            let metrics = &state.metrics;
            metrics
                .stream_connected
                .set(i64::from(stream.connected.is_some()));
            metrics.stream_connects.set(stream.connects as i64);
            (StatusCode::OK, PROMETHEUS, metrics.render())
        }
        (_, "/stats") => {
            let stats = Stats::collect(&table, &state.stream.borrow(), &state.read_status.borrow());
            match serde_json::to_string(&stats) {
                Ok(json) => (StatusCode::OK, JSON, json),
                Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, TEXT, format!("{err}\n")),
            }
        }
        // Marathon-LB answers GET; a POST from a script is accepted too.
        (&Method::GET | &Method::POST, "/_mlb_signal/hup") => {
            state.reload.notify_one();
            state.cert_reload.notify_one();
            (
                StatusCode::OK,
                TEXT,
                "Sent SIGHUP signal to switchyard\n".to_owned(),
            )
        }
        (&Method::GET | &Method::POST, "/_mlb_signal/usr1") => {
            state.rebuild.notify_one();
            (
                StatusCode::OK,
                TEXT,
                "Sent SIGUSR1 signal to switchyard\n".to_owned(),
            )
        }
        _ => (StatusCode::NOT_FOUND, TEXT, "not found\n".to_owned()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    Ok(response)
}

//! The admin port: Marathon-LB's endpoints (`/_haproxy_health_check`, the vhost and app maps,
//! the config, the signal endpoints), ours (`/healthz`, `/readyz`, `/routes`, `/stats`,
//! `/metrics`, `/history`) and the status page. It never shares a port with traffic.

mod generations;
mod maps;
mod page;
mod recorder;
mod stats;
mod traffic;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::SystemTime;

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
use crate::routing::report::RoutesReport;
use crate::routing::SharedTable;

pub use generations::GenerationEntry;
pub use recorder::{run as record, unix_ms, Recorded};
pub use stats::Stats;

/// How reading the source goes, for the status page and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReadStatus {
    /// When a read last succeeded.
    pub last_success: Option<SystemTime>,
    /// Why the last read failed, while reads fail.
    pub error: Option<String>,
    /// Since when an empty app list is held back (not served) until a later read confirms it.
    pub held_empty_list_since: Option<SystemTime>,
}

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
    /// The traffic history and recent generations ([`record`] fills them).
    pub recorded: Arc<Recorded>,
}

/// Connections the admin port holds at once, and from one client address: scrapers, health
/// checks and a few browsers need a handful. Past either, a new connection is closed at once.
pub const MAX_CONNECTIONS: usize = 256;
pub const MAX_CONNECTIONS_PER_IP: usize = 32;

pub async fn run(listener: TcpListener, state: AdminState, stop: CancellationToken) {
    // Handed to a successor on a binary upgrade while this loop runs.
    let listener = std::sync::Arc::new(listener);
    let _offered = crate::handover::offer(&listener);
    tokio::select! {
        () = crate::handover::until_accepting() => {}
        () = stop.cancelled() => return,
    }
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let per_ip = Arc::new(crate::proxy::accept::per_ip::PerIp::default());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let Ok((stream, peer)) = accepted else {
            // Out of file descriptors (EMFILE): back off instead of spinning on accept.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let (Ok(permit), Some(slot)) = (
            permits.clone().try_acquire_owned(),
            per_ip.admit(peer.ip(), MAX_CONNECTIONS_PER_IP),
        ) else {
            tracing::debug!(%peer, "admin connection refused: connection cap reached");
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _held = (permit, slot);
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
            metrics.stream_connects.observe(stream.connects);
            table.observe_endpoints(metrics);
            (StatusCode::OK, PROMETHEUS, metrics.render())
        }
        (_, "/stats") => {
            let stats = Stats::collect(
                &table,
                &state.stream.borrow(),
                &state.read_status.borrow(),
                &state.metrics,
                &state.recorded,
            );
            match serde_json::to_string(&stats) {
                Ok(json) => (StatusCode::OK, JSON, json),
                Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, TEXT, format!("{err}\n")),
            }
        }
        (_, "/history") => match state.recorded.history_json(&table) {
            Ok(json) => (StatusCode::OK, JSON, json),
            Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, TEXT, format!("{err}\n")),
        },
        // HAProxy's stats page, where Marathon-LB users look first: the status page is ours.
        (_, "/haproxy") if haproxy_stats(&request) == Some(false) => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"see /\n")));
            *response.status_mut() = StatusCode::FOUND;
            response
                .headers_mut()
                .insert(http::header::LOCATION, http::HeaderValue::from_static("/"));
            return Ok(response);
        }
        (_, "/haproxy") if haproxy_stats(&request) == Some(true) => (
            StatusCode::NOT_FOUND,
            TEXT,
            "HAProxy's CSV does not exist here: /stats has each backend's figures as JSON\n"
                .to_owned(),
        ),
        // A page on another site must not make a visitor's browser send a signal.
        (_, path) if path.starts_with("/_mlb_signal/") && is_cross_site(&request) => (
            StatusCode::FORBIDDEN,
            TEXT,
            "cross-site request refused: send signals from a script (curl), not a web page\n"
                .to_owned(),
        ),
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

/// `/haproxy?stats` (`Some(false)`) or `/haproxy?stats;csv` (`Some(true)`), as HAProxy's
/// `stats uri` answers them; `None` for another query.
fn haproxy_stats<B>(request: &Request<B>) -> Option<bool> {
    let query = request.uri().query()?;
    let rest = query.strip_prefix("stats")?;
    match rest {
        "" => Some(false),
        _ if rest.starts_with(";csv") => Some(true),
        _ if rest.starts_with(';') => Some(false),
        _ => None,
    }
}

/// Whether a browser sent this request for another origin: its `Origin` is not the admin
/// port's own (the request's `Host`), or, without one, `Sec-Fetch-Site` says so. Scripts
/// (curl) send neither and pass.
fn is_cross_site<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    if let Some(origin) = headers.get(http::header::ORIGIN) {
        let origin = origin.as_bytes();
        let authority = origin
            .strip_prefix(b"http://")
            .or_else(|| origin.strip_prefix(b"https://"));
        let host = headers.get(http::header::HOST).map(|h| h.as_bytes());
        return match (authority, host) {
            (Some(authority), Some(host)) => !authority.eq_ignore_ascii_case(host),
            _ => true,
        };
    }
    headers
        .get("sec-fetch-site")
        .is_some_and(|site| !matches!(site.as_bytes(), b"same-origin" | b"none"))
}

#[cfg(test)]
mod tests {
    use super::is_cross_site;

    #[test]
    fn only_a_browser_on_another_origin_is_cross_site() {
        let request = |headers: &[(&str, &str)]| {
            let mut builder =
                http::Request::get("/_mlb_signal/hup").header("host", "10.0.0.5:9090");
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            builder.body(()).unwrap()
        };
        assert!(!is_cross_site(&request(&[])), "curl");
        assert!(!is_cross_site(&request(&[(
            "origin",
            "http://10.0.0.5:9090"
        )])));
        assert!(!is_cross_site(&request(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(!is_cross_site(&request(&[("sec-fetch-site", "none")])));
        assert!(is_cross_site(&request(&[(
            "origin",
            "https://evil.example"
        )])));
        assert!(is_cross_site(&request(&[("origin", "null")])));
        assert!(is_cross_site(&request(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&request(&[("sec-fetch-site", "same-site")])));
    }
}

//! One connection: read requests, answer Marathon's endpoints, hand `/v2/events` over to the
//! stream writer. The order of checks follows Marathon's filter chain: authentication (Jetty),
//! then leadership (`LeaderProxyFilter`), then the resource.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::BytesMut;
use flate2::write::GzEncoder;
use flate2::Compression;
use http::header::{ACCEPT, ACCEPT_ENCODING};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::auth::LOGIN_PATH;
use super::events::{self, Filter, StreamSetup};
use super::h1::{self, Request, RequestError, Response};
use super::node::{lock, Role, Stops};
use super::shared::HeldReads;
use super::{AppsFault, Shared};

/// The Marathon version `/v2/info` claims.
const MARATHON_VERSION: &str = "1.11.24";
/// Jetty's GzipHandler leaves smaller bodies alone.
const MIN_GZIP_SIZE: usize = 32;
/// Bodies at least this big are compressed off the async workers.
const BIG_BODY: usize = 256 * 1024;

/// What to do with a request.
enum Reply {
    Full(Response),
    /// Announce the whole body, send half of it, close (the `Truncated` fault).
    Truncated(Response),
    Events(Filter),
}

pub(super) async fn serve_connection(
    shared: Arc<Shared>,
    index: usize,
    mut stream: TcpStream,
    peer: SocketAddr,
) {
    // Heartbeat CR and LF are separate writes; Nagle must not hold the LF back.
    let _ = stream.set_nodelay(true);
    let Some(role) = shared.listeners.get(index).map(|l| l.role) else {
        return;
    };
    let mut stops = Stops::new(&shared, index);
    let mut buf = BytesMut::with_capacity(8 * 1024);
    loop {
        let read = tokio::select! {
            () = stops.fired() => return,
            read = h1::read_request(&mut stream, &mut buf) => read,
        };
        let request = match read {
            Ok(request) => request,
            Err(RequestError::Closed) => return,
            Err(RequestError::Reject(status, why)) => {
                let bytes = Response::message(status, why).to_bytes(true);
                let _ = write(&mut stream, &mut stops, &bytes).await;
                return;
            }
        };
        shared.remember(&request);
        // Subscribed before the leader check, so a move right after it still closes the stream.
        let leadership = shared.leadership.subscribe();
        let reply = route(&shared, role, &request);
        match reply {
            Reply::Full(response) => {
                shared.count(&request, response.status);
                if request.method == "GET" && request.path.starts_with("/v2/apps") {
                    held(&shared, role).await;
                }
                let response = maybe_gzip(response, &request);
                let close = !request.keep_alive;
                let bytes = response.to_bytes(close);
                if write(&mut stream, &mut stops, &bytes).await.is_err() || close {
                    return;
                }
            }
            Reply::Truncated(response) => {
                shared.count(&request, response.status);
                let response = maybe_gzip(response, &request);
                let mut bytes = response.head(response.body.len(), true);
                bytes.extend_from_slice(&response.body[..response.body.len() / 2]);
                let _ = write(&mut stream, &mut stops, &bytes).await;
                let _ = stream.shutdown().await;
                return;
            }
            Reply::Events(filter) => {
                stops.watch_leadership(leadership);
                let setup = StreamSetup {
                    bus: &shared.bus,
                    heartbeat: shared.heartbeat,
                    stalled: shared.stalled.subscribe(),
                    stops,
                    filter,
                    peer,
                };
                let counters = &shared.counters;
                events::stream_events(stream, setup, || {
                    counters.event_connections.fetch_add(1, Ordering::Relaxed);
                })
                .await;
                return;
            }
        }
    }
}

fn route(shared: &Shared, role: Role, request: &Request) -> Reply {
    if request.path == LOGIN_PATH {
        return Reply::Full(match shared.auth.login(&request.method, &request.body) {
            Ok(response) => {
                shared.counters.logins.fetch_add(1, Ordering::Relaxed);
                response
            }
            Err(response) => response,
        });
    }
    let Role::Node(node) = role else {
        return Reply::Full(Response::message(404, "only the login endpoint lives here"));
    };
    if request.path == "/ping" {
        return Reply::Full(Response::new(200, "text/plain", "pong"));
    }
    if let Err(response) = shared.auth.check(&request.headers) {
        return Reply::Full(response);
    }
    if request.path == "/v2" || request.path.starts_with("/v2/") {
        if shared.election.load(Ordering::SeqCst) {
            return Reply::Full(Response::message(
                503,
                "Could not determine the current leader",
            ));
        }
        // Standbys proxy to the leader; with one shared state that is answering directly.
        return match v2(shared, node, request) {
            Reply::Full(response) => {
                Reply::Full(response.with_header("X-Marathon-Leader", shared.leader_url()))
            }
            other => other,
        };
    }
    Reply::Full(Response::message(404, "Not found"))
}

fn v2(shared: &Shared, node: usize, request: &Request) -> Reply {
    if let Some(response) = super::writes::answer(shared, request) {
        return Reply::Full(response);
    }
    let path = request.path.as_str();
    let known = matches!(path, "/v2/events" | "/v2/apps" | "/v2/info" | "/v2/leader")
        || path.starts_with("/v2/apps/");
    if !known {
        return Reply::Full(Response::message(404, &format!("no resource {path}")));
    }
    if request.method != "GET" {
        return Reply::Full(Response::html_error(405, "Method Not Allowed"));
    }
    match path {
        "/v2/events" => events(shared, node, request),
        "/v2/apps" => apps(shared, request),
        "/v2/info" => Reply::Full(Response::json(200, &info(shared, node))),
        "/v2/leader" => Reply::Full(Response::json(
            200,
            &json!({ "leader": shared.leader_host_port() }),
        )),
        _ => {
            let id = path.trim_start_matches("/v2/apps");
            let embed = embeds_tasks(request);
            let app = lock(&shared.apps).app_json(id, embed);
            match app {
                Some(app) => {
                    let document = json!({ "app": app });
                    faulty(shared, &document, "app")
                        .unwrap_or_else(|| Reply::Full(Response::json(200, &document)))
                }
                None => Reply::Full(Response::message(
                    404,
                    &format!("App '{id}' does not exist"),
                )),
            }
        }
    }
}

fn events(shared: &Shared, node: usize, request: &Request) -> Reply {
    let leader = shared.leader.load(Ordering::SeqCst);
    if node != leader {
        let query = request
            .query
            .as_deref()
            .map_or(String::new(), |q| format!("?{q}"));
        let location = format!("{}/v2/events{query}", shared.leader_url());
        return Reply::Full(Response::new(302, "text/plain", "").with_header("Location", location));
    }
    // Jetty's EventSourceServlet: some Accept value must equal text/event-stream exactly.
    let accepted = request
        .headers
        .get_all(ACCEPT)
        .iter()
        .any(|value| value.as_bytes() == b"text/event-stream");
    if !accepted {
        return Reply::Full(Response::html_error(
            405,
            "HTTP method GET is not supported by this URL",
        ));
    }
    Reply::Events(Filter::from_query(request.query.as_deref()))
}

fn apps(shared: &Shared, request: &Request) -> Reply {
    off_the_workers(true, || {
        // Rendered from a copy: as in Marathon, a long read does not hold up the changes (and
        // their events) that come meanwhile.
        let listing = lock(&shared.apps).listing();
        let embed = embeds_tasks(request);
        if *lock(&shared.fault) == AppsFault::None {
            let body = listing.to_bytes(embed);
            return Reply::Full(Response::new(200, "application/json", body));
        }
        let document = listing.to_json(embed);
        faulty(shared, &document, "apps")
            .unwrap_or_else(|| Reply::Full(Response::json(200, &document)))
    })
}

/// The answer the configured fault makes of `document` (a `/v2/apps` list or, under `key`
/// `app`, one app); `None` without a fault.
fn faulty(shared: &Shared, document: &serde_json::Value, key: &str) -> Option<Reply> {
    let fault = *lock(&shared.fault);
    let garbage = |body: String| Response::new(200, "application/json", body);
    Some(match fault {
        AppsFault::None => return None,
        AppsFault::Status(status) => Reply::Full(Response::message(status, "simulated failure")),
        AppsFault::Html(status) => Reply::Full(Response::new(
            status,
            "text/html",
            format!("<html><body><h1>{status}</h1>Leader election in progress</body></html>"),
        )),
        AppsFault::Garbage => Reply::Full(garbage(format!("{{\"{key}\": [ {{"))),
        AppsFault::WrongTyped => Reply::Full(garbage(format!("{{\"{key}\": {{\"x\": 1}}}}"))),
        AppsFault::Truncated => Reply::Truncated(Response::json(200, document)),
        AppsFault::Empty if key == "apps" => {
            Reply::Full(Response::json(200, &json!({ "apps": [] })))
        }
        AppsFault::Empty => Reply::Full(Response::message(404, "App does not exist")),
    })
}

/// `embed=apps.tasks`, with any of the prefixes Marathon accepts; `failures` implies tasks.
fn embeds_tasks(request: &Request) -> bool {
    h1::query_pairs(request.query.as_deref())
        .filter(|(key, _)| key == "embed")
        .any(|(_, value)| {
            let embed = ["group.apps.", "apps.", "app."]
                .iter()
                .find_map(|prefix| value.strip_prefix(prefix))
                .unwrap_or(&value);
            matches!(embed, "tasks" | "failures")
        })
}

fn info(shared: &Shared, node: usize) -> serde_json::Value {
    let port = shared.listeners.get(node).map_or(0, |l| l.port);
    json!({
        "name": "marathon",
        "version": MARATHON_VERSION,
        "buildref": "switchyard-simulator",
        "elected": shared.leader.load(Ordering::SeqCst) == node,
        "leader": shared.leader_host_port(),
        "frameworkId": "5e1a7f00-0000-4000-8000-000000000000-0000",
        "marathon_config": {
            "hostname": "127.0.0.1",
            "local_port_min": 10000,
            "local_port_max": 20000,
            "default_network_name": "dcos",
            "mesos_role": "*",
            "features": [],
        },
        "zookeeper_config": {"zk": "zk://127.0.0.1:2181/marathon"},
        "http_config": {"http_port": port, "https_port": 8443},
    })
}

/// Waits while reads are held on this node (counted as waiting meanwhile).
async fn held(shared: &Shared, role: Role) {
    let mut held = shared.reads_held.subscribe();
    let on_this_node = |h: &HeldReads| match (h.node, role) {
        (None, _) => true,
        (Some(node), Role::Node(this)) => node == this,
        (Some(_), Role::Login) => false,
    };
    if !held.borrow().holding || !on_this_node(&held.borrow()) {
        return;
    }
    shared.reads_held.send_modify(|h| h.waiting += 1);
    let _ = held.wait_for(|h| !h.holding).await;
    shared.reads_held.send_modify(|h| h.waiting -= 1);
}

/// Rendering and compressing a large document takes a while: when the work is `big`, on a
/// multi-threaded runtime, the worker hands its other tasks (the event streams among them) to
/// another thread meanwhile, as Marathon's own threads would serve them.
fn off_the_workers<T>(big: bool, work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread if big => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// Marathon's Jetty gzips responses when the client accepts it.
fn maybe_gzip(mut response: Response, request: &Request) -> Response {
    if response.body.len() < MIN_GZIP_SIZE
        || !h1::has_token(&request.headers, &ACCEPT_ENCODING, "gzip")
    {
        return response;
    }
    let big = response.body.len() >= BIG_BODY;
    let compressed = off_the_workers(big, || {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder
            .write_all(&response.body)
            .and_then(|()| encoder.finish())
    });
    match compressed {
        Ok(compressed) => {
            response.body = compressed;
            response
                .with_header("Content-Encoding", "gzip")
                .with_header("Vary", "Accept-Encoding")
        }
        Err(_) => response,
    }
}

/// Writes unless the connection must close first (a client that stops reading cannot hold
/// a connection open past `set_down` or shutdown).
async fn write(stream: &mut TcpStream, stops: &mut Stops, bytes: &[u8]) -> Result<(), ()> {
    tokio::select! {
        () = stops.fired() => Err(()),
        written = stream.write_all(bytes) => written.map_err(|_| ()),
    }
}

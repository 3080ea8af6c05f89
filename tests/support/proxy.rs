//! Data-plane test support: real backends on loopback, Switchyard in-process on port 0, and an
//! apps file the tests rewrite (then reload and wait for the generation: no sleeps).
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use switchyard::model::ModelOptions;
use switchyard::proxy::ProxyConfig;
use switchyard::routing::BuildOptions;
use switchyard::serve::{self, BoundListeners, Handle, ServeOptions, Source};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A real HTTP backend (HTTP/1.1) that answers with its name and echoes what it received.
pub struct Backend {
    pub name: &'static str,
    pub addr: SocketAddr,
    /// Requests it has received.
    pub hits: Arc<AtomicUsize>,
    /// When set, each request waits for a permit before answering.
    pub gate: Arc<Semaphore>,
}

impl Backend {
    pub async fn start(name: &'static str) -> Backend {
        Backend::start_with(name, false).await
    }

    /// `gated`: requests wait for [`Backend::release`] before answering.
    pub async fn start_with(name: &'static str, gated: bool) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(if gated {
            0
        } else {
            Semaphore::MAX_PERMITS
        }));
        let (h, g) = (hits.clone(), gate.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (hits, gate) = (h.clone(), g.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let (hits, gate) = (hits.clone(), gate.clone());
                        async move { Ok::<_, Infallible>(answer(name, req, hits, gate).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Backend {
            name,
            addr,
            hits,
            gate,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Lets `n` gated requests answer.
    pub fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }
}

async fn answer(
    name: &'static str,
    req: Request<Incoming>,
    hits: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
) -> Response<Full<Bytes>> {
    hits.fetch_add(1, Ordering::SeqCst);
    let _permit = gate.acquire().await.unwrap();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    if path.starts_with("/health") {
        let status = if name.starts_with("sick") { 500 } else { 200 };
        return Response::builder()
            .status(status)
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    if path.starts_with("/redirect-me") {
        // The redirect the request asks for (`x-location`), else a relative one.
        let location = req
            .headers()
            .get("x-location")
            .cloned()
            .unwrap_or(http::HeaderValue::from_static("/landed"));
        return Response::builder()
            .status(302)
            .header("location", location.clone())
            .header("content-location", location)
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    let headers: serde_json::Map<String, Value> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
        .collect();
    let method = req.method().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let doc = json!({"backend": name, "method": method, "path": path, "headers": headers, "body_len": body});
    Response::builder()
        .header("content-type", "application/json")
        .header("x-backend", name)
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "must not reach the client")
        .body(Full::new(Bytes::from(doc.to_string())))
        .unwrap()
}

/// A TCP server that sends back every byte it receives, and half-closes when its client does.
pub async fn echo_server() -> u16 {
    use tokio::io::AsyncWriteExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    port
}

/// A port that refuses connections: a free port nothing will bind.
pub fn closed_port() -> u16 {
    free_port()
}

/// A port free for a listener the test starts later (often in another process).
///
/// Taken below the kernel's ephemeral range (32768–60999 by default), from a counter shared by
/// the suite's threads: a port the kernel hands out for `bind(:0)` or an outgoing connection
/// could be taken by anything running meanwhile, a backend or the balancer's own upstream
/// connection, between this call and the test's bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::AtomicU16;
    const FIRST: u16 = 20_000;
    const LAST: u16 = 32_000;
    // Each process starts somewhere else, so a binary run again right after does not reuse
    // ports still in TIME_WAIT on the client side.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        FIRST + (std::process::id() % u32::from(LAST - FIRST)) as u16,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    loop {
        let port = NEXT
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
                Some(if p >= LAST { FIRST } else { p + 1 })
            })
            .expect("the update always succeeds");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A host-networking app on `service_port` with one task per backend port.
pub fn app(id: &str, service_port: u16, labels: Value, ports: &[u16]) -> Value {
    let mut labels = labels;
    labels["HAPROXY_GROUP"] = json!("external");
    json!({
        "id": id,
        "labels": labels,
        "portDefinitions": [{"port": service_port}],
        "tasks": ports.iter().map(|p| json!({
            "id": format!("{}.task-{p}", id.trim_start_matches('/')),
            "host": "127.0.0.1",
            "state": "TASK_RUNNING",
            "ports": [p],
        })).collect::<Vec<_>>(),
    })
}

/// Switchyard running in this process, fed from an apps file in a temporary directory.
pub struct Proxy {
    pub handle: Handle,
    pub apps_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proxy {
    pub async fn start(apps: Value) -> Proxy {
        Proxy::start_with(apps, ProxyConfig::default()).await
    }

    pub async fn start_with(apps: Value, proxy: ProxyConfig) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let apps_file = dir.path().join("apps.json");
        write_apps(&apps_file, &apps);
        // Tests reload explicitly and wait for the generation.
        let handle = serve_on_loopback(
            Source::File(apps_file.clone()),
            Duration::from_secs(3600),
            proxy,
        )
        .await;
        Proxy {
            handle,
            apps_file,
            _dir: dir,
        }
    }

    /// Rewrites the apps and waits until the table built from them is served.
    pub async fn set_apps(&self, apps: Value) {
        let next = self.handle.generation() + 1;
        write_apps(&self.apps_file, &apps);
        self.handle.reload();
        self.handle.wait_generation(next).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.handle.http_addr.unwrap())
    }

    /// What an admin endpoint answers (`/metrics`, `/stats`, ...).
    pub async fn admin_text(&self, path: &str) -> String {
        let url = format!("http://{}{path}", self.handle.admin_addr);
        reqwest::get(url).await.unwrap().text().await.unwrap()
    }

    /// A WebSocket to `url` through the HTTP listener: the upgrade answered 101, three
    /// messages echoed back, a clean close.
    pub async fn websocket_echoes(&self, url: &str) {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::Message;
        let stream = tokio::net::TcpStream::connect(self.handle.http_addr.unwrap())
            .await
            .unwrap();
        let request = url.into_client_request().unwrap();
        let (mut socket, response) = tokio_tungstenite::client_async(request, stream)
            .await
            .unwrap();
        assert_eq!(response.status(), 101);
        for text in ["one", "two", "three"] {
            socket.send(Message::Text(text.into())).await.unwrap();
            let echoed = socket.next().await.unwrap().unwrap();
            assert_eq!(echoed, Message::Text(text.into()));
        }
        socket.close(None).await.unwrap();
    }
}

/// Serve mode on loopback listeners bound to port 0, with default routing options; returns
/// once the first table is served.
pub async fn serve_on_loopback(
    source: Source,
    poll_interval: Duration,
    proxy: ProxyConfig,
) -> Handle {
    let handle = start_on_loopback(source, poll_interval, proxy).await;
    handle.wait_generation(1).await;
    handle
}

/// Serve mode on loopback listeners bound to port 0, with default routing options; returns at
/// once (the first table may never come).
pub async fn start_on_loopback(
    source: Source,
    poll_interval: Duration,
    proxy: ProxyConfig,
) -> Handle {
    start_with_certs(
        source,
        poll_interval,
        proxy,
        Vec::new(),
        Duration::from_secs(3600),
    )
    .await
}

/// [`start_on_loopback`] serving the certificate files `ssl_certs`, looked at every
/// `cert_poll_interval`.
pub async fn start_with_certs(
    source: Source,
    poll_interval: Duration,
    proxy: ProxyConfig,
    ssl_certs: Vec<std::path::PathBuf>,
    cert_poll_interval: Duration,
) -> Handle {
    let bind = || async { TcpListener::bind("127.0.0.1:0").await.unwrap() };
    let listeners = BoundListeners {
        http: Some(bind().await),
        https: Some(bind().await),
        app_id: bind().await,
        admin: bind().await,
    };
    let options = ServeOptions {
        model: ModelOptions::default(),
        build: BuildOptions::default(),
        source,
        poll_interval,
        bind_address: "127.0.0.1".parse().unwrap(),
        proxy,
        ssl_certs,
        ssl_cert_vars: Vec::new(),
        cert_poll_interval,
    };
    serve::start(options, listeners).unwrap()
}

fn write_apps(path: &std::path::Path, apps: &Value) {
    // Write then rename, so a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&json!({ "apps": apps })).unwrap()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A keep-alive HTTP/1.1 client.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A client that opens a new connection for every request.
pub fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// GET with a Host header; returns (status, backend name or "", JSON body when there is one).
pub async fn get(client: &reqwest::Client, url: &str, host: &str) -> (u16, String, Value) {
    send(client.get(url).header("host", host)).await
}

/// Sends a request; returns (status, backend name or "", JSON body when there is one).
pub async fn send(request: reqwest::RequestBuilder) -> (u16, String, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let backend = response
        .headers()
        .get("x-backend")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.bytes().await.unwrap();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, backend, json)
}

/// An executor for hyper clients in tests.
pub fn executor() -> TokioExecutor {
    TokioExecutor::new()
}

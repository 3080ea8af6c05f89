//! The real binary: signals (SIGHUP re-reads, SIGTERM drains and exits 0), memory that stays
//! flat while 1 GiB goes through each way, and a connection flood under a low open-file limit.

use crate::support;

use support::metric;
use support::proxy::free_port;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{Notify, Semaphore};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
const GIB: u64 = 1 << 30;
const CHUNK: usize = 256 * 1024;

fn apps(backend_port: u16) -> serde_json::Value {
    json!({"apps": [{
        "id": "/bulk",
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "bulk.example.com"},
        "portDefinitions": [{"port": free_port()}],
        "tasks": [{"id": "bulk.1", "host": "127.0.0.1", "state": "TASK_RUNNING", "ports": [backend_port]}]
    }]})
}

struct Running {
    child: Child,
    http: SocketAddr,
    admin: SocketAddr,
    _dir: tempfile::TempDir,
    apps_file: std::path::PathBuf,
}

async fn start(apps: serde_json::Value) -> Running {
    start_with(apps, |_| {}).await
}

/// [`start`], with the command adjusted by `adjust` before it is spawned.
async fn start_with(apps: serde_json::Value, adjust: impl FnOnce(&mut Command)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let apps_file = dir.path().join("apps.json");
    std::fs::write(&apps_file, apps.to_string()).unwrap();
    let (http, app_id, admin) = (free_port(), free_port(), free_port());
    let mut command = Command::new(BIN);
    command
        .args([
            "--apps-file",
            apps_file.to_str().unwrap(),
            "--bind-address",
            "127.0.0.1",
        ])
        .args([
            "--http-port",
            &http.to_string(),
            "--app-id-port",
            &app_id.to_string(),
        ])
        .args([
            "--admin-port",
            &admin.to_string(),
            "--apps-file-poll",
            "3600",
            "--https-port",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    adjust(&mut command);
    let child = command.spawn().unwrap();
    let admin: SocketAddr = ([127, 0, 0, 1], admin).into();
    let running = Running {
        child,
        http: ([127, 0, 0, 1], http).into(),
        admin,
        _dir: dir,
        apps_file,
    };
    wait_generation(&running, 1).await;
    running
}

/// Polls the admin port until the served table reaches `n` (the process is another process:
/// its admin port is the observable state).
async fn wait_generation(running: &Running, n: u64) {
    let http = reqwest::Client::new();
    loop {
        if let Ok(r) = http
            .get(format!("http://{}/generation", running.admin))
            .send()
            .await
        {
            if let Ok(text) = r.text().await {
                if text.trim().parse::<u64>().is_ok_and(|g| g >= n) {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-s", name, &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Peak and current resident memory of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// A backend that counts an uploaded body (POST) or streams `GIB` bytes (GET), gated by `gate`;
/// `arrived` is notified when a request reaches it.
async fn bulk_backend(gate: std::sync::Arc<Semaphore>, arrived: std::sync::Arc<Notify>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let (gate, arrived) = (gate.clone(), arrived.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (gate, arrived) = (gate.clone(), arrived.clone());
                    async move {
                        arrived.notify_one();
                        let _permit = gate.acquire().await.unwrap();
                        Ok::<_, Infallible>(bulk(req).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), service)
                    .await;
            });
        }
    });
    port
}

type BulkBody = http_body_util::Either<
    Full<Bytes>,
    StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>,
>;

async fn bulk(req: Request<Incoming>) -> Response<BulkBody> {
    if req.method() == hyper::Method::POST {
        let mut body = req.into_body();
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.unwrap().into_data() {
                total += data.len() as u64;
            }
        }
        return Response::new(http_body_util::Either::Left(Full::new(Bytes::from(
            total.to_string(),
        ))));
    }
    let chunk = Bytes::from(vec![7u8; CHUNK]);
    let frames: Vec<_> = (0..GIB as usize / CHUNK)
        .map(|_| Ok(Frame::data(chunk.clone())))
        .collect();
    Response::new(http_body_util::Either::Right(StreamBody::new(
        stream::iter(frames),
    )))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_each_way_keeps_memory_flat() {
    let port = bulk_backend(
        std::sync::Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
        std::sync::Arc::new(Notify::new()),
    )
    .await;
    let running = start(apps(port)).await;
    let pid = running.child.id().unwrap();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // Warm up the connection pools, then take the baseline.
    let _ = http
        .post(format!("http://{}/", running.http))
        .header("host", "bulk.example.com")
        .body("x")
        .send()
        .await
        .unwrap();
    let (_, baseline) = memory_kib(pid);

    // Upload: the client streams 1 GiB; the backend counts it.
    let stream = TcpStreamBody::new(GIB);
    let stream_conn = tokio::net::TcpStream::connect(running.http).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream_conn))
        .await
        .unwrap();
    tokio::spawn(conn);
    let upload = Request::post("/upload")
        .header("host", "bulk.example.com")
        .header("content-length", GIB.to_string())
        .body(stream)
        .unwrap();
    let response = sender.send_request(upload).await.unwrap();
    let counted = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(counted, GIB.to_string().as_bytes());

    // Download: the backend streams 1 GiB; the client counts it.
    let mut response = http
        .get(format!("http://{}/download", running.http))
        .header("host", "bulk.example.com")
        .send()
        .await
        .unwrap();
    let mut received = 0u64;
    while let Some(chunk) = response.chunk().await.unwrap() {
        received += chunk.len() as u64;
    }
    assert_eq!(received, GIB);

    let (peak, _) = memory_kib(pid);
    let growth_mib = peak.saturating_sub(baseline) / 1024;
    eprintln!(
        "switchyard RSS: baseline {} MiB, peak {} MiB",
        baseline / 1024,
        peak / 1024
    );
    assert!(
        growth_mib < 48,
        "peak RSS grew by {growth_mib} MiB while 2 GiB went through"
    );
}

/// A request body of `len` bytes, produced chunk by chunk from one shared buffer.
struct TcpStreamBody {
    left: u64,
    chunk: Bytes,
}

impl TcpStreamBody {
    fn new(len: u64) -> Self {
        TcpStreamBody {
            left: len,
            chunk: Bytes::from(vec![3u8; CHUNK]),
        }
    }
}

impl hyper::body::Body for TcpStreamBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let n = self.left.min(CHUNK as u64) as usize;
        self.left -= n as u64;
        std::task::Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }
}

#[tokio::test]
async fn sighup_rereads_and_sigterm_drains_then_exits_zero() {
    let gate = std::sync::Arc::new(Semaphore::new(0));
    let arrived = std::sync::Arc::new(Notify::new());
    let port = bulk_backend(gate.clone(), arrived.clone()).await;
    let mut running = start(json!({"apps": []})).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let status = http
        .get(format!("http://{}/", running.http))
        .header("host", "bulk.example.com")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 503, "nothing routed yet");
    let health = http
        .get(format!("http://{}/_haproxy_health_check", running.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(
        health.status(),
        200,
        "Marathon-LB's health check on the admin port"
    );

    std::fs::write(&running.apps_file, apps(port).to_string()).unwrap();
    signal(&running.child, "HUP");
    wait_generation(&running, 2).await;

    // A request in flight when SIGTERM arrives still completes.
    let in_flight = {
        let (http, url) = (http.clone(), format!("http://{}/", running.http));
        tokio::spawn(async move {
            http.post(url)
                .header("host", "bulk.example.com")
                .body("12345")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    // The backend holds it at the gate.
    arrived.notified().await;
    signal(&running.child, "TERM");
    // New connections are refused once the listener is gone...
    let refused = loop {
        match tokio::net::TcpStream::connect(running.http).await {
            Err(_) => break true,
            Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    assert!(refused);
    // ...while the request in flight finishes.
    gate.add_permits(1);
    assert_eq!(in_flight.await.unwrap(), "5");
    let status = running.child.wait().await.unwrap();
    assert!(status.success(), "exit status {status:?}");
}

/// Guards against a hang; never a synchronisation point.
async fn guarded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// B5: with an open-file limit of 256 and the default `--max-connections` (50,000), the cap is
/// fitted to the limit (one warning says so), a flood of 300 connections is held at it (the
/// rest wait in the kernel's backlog, no accept fails), and the admin port keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_low_open_file_limit_the_cap_fits_and_the_admin_port_keeps_answering() {
    use tokio::io::AsyncReadExt;
    const LIMIT: u64 = 256;
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut running = start_with(apps(backend.local_addr().unwrap().port()), |command| {
        command.stderr(Stdio::piped());
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| rlimit::setrlimit(rlimit::Resource::NOFILE, LIMIT, LIMIT));
        }
    })
    .await;
    let cap = switchyard::proxy::open_files::fit_to(50_000, LIMIT).max_connections;
    assert!(cap < 300);

    let mut flood = Vec::new();
    for _ in 0..300 {
        let connected = tokio::net::TcpStream::connect(running.http);
        flood.push(guarded("a flood connection", connected).await.unwrap());
    }
    let admin = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = |path: &str| format!("http://{}{path}", running.admin);
    // Connections the balancer holds open on its HTTP port.
    let open = || async {
        let metrics = admin.get(url("/metrics")).send().await.unwrap();
        let text = metrics.text().await.unwrap();
        metric(&text, "switchyard_connections{listener=\"http\"}")
    };
    // The cap fills up...
    guarded("the flood to reach the cap", async {
        while open().await < cap as f64 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // ...and holds there, while the admin port answers every probe.
    for _ in 0..20 {
        let probe = admin.get(url("/_haproxy_health_check")).send();
        assert_eq!(guarded("a probe", probe).await.unwrap().status(), 200);
    }
    assert_eq!(open().await, cap as f64, "held at the cap");
    drop(flood);
    drop(backend);

    signal(&running.child, "TERM");
    let status = guarded("the exit", running.child.wait()).await.unwrap();
    assert!(status.success());
    let mut stderr = String::new();
    running
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(
        stderr.contains("--max-connections lowered")
            && stderr.contains(&format!("max_connections={cap}")),
        "{stderr}"
    );
    assert!(!stderr.contains("accept failed"), "{stderr}");
}

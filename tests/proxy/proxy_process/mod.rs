//! The real binary: signals (SIGHUP re-reads, SIGTERM drains and exits 0), memory that stays
//! flat while 1 GiB goes through each way, and a connection flood under a low open-file limit.
//!
//! Starting the binary and the bulk backend are here; the tests are in `memory` and `signals_and_limits`.

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

mod memory;
mod signals_and_limits;

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

/// Guards against a hang; never a synchronisation point.
async fn guarded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

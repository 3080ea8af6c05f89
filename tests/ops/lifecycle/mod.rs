//! Lifecycle (reliability matrix C2, C3, C4, C5, C6): a binary upgrade under load, SIGTERM with
//! requests in flight, idle keep-alive, upgraded and streaming connections during the drain (the
//! real binary, since signals are involved), and a route removed while requests to it are in
//! flight.
//!
//! Starting the binary and signalling it are here; the tests are in `in_flight`, `upgrade` and
//! `drain_deadline`.

use crate::support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use support::proxy::*;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

mod drain_deadline;
mod in_flight;
mod upgrade;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
/// Guards against a hang; never a synchronisation point.
const GUARD: Duration = Duration::from_secs(15);

async fn guarded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(GUARD, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

struct Running {
    child: Child,
    http: SocketAddr,
    _dir: tempfile::TempDir,
}

/// The binary serving `apps` from a file, with `--drain-timeout drain`.
async fn start(apps: Value, drain: Duration) -> Running {
    start_with(apps, drain, &[]).await
}

/// [`start`] with more flags.
async fn start_with(apps: Value, drain: Duration, flags: &[&str]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let apps_file = dir.path().join("apps.json");
    std::fs::write(&apps_file, json!({ "apps": apps }).to_string()).unwrap();
    let (http, app_id, admin) = (free_port(), free_port(), free_port());
    let child = Command::new(BIN)
        .args(["--apps-file", apps_file.to_str().unwrap()])
        .args(["--bind-address", "127.0.0.1", "--https-port", "0"])
        .args(["--http-port", &http.to_string()])
        .args(["--app-id-port", &app_id.to_string()])
        .args(["--admin-port", &admin.to_string()])
        .args(["--drain-timeout", &drain.as_secs_f64().to_string()])
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Served once the admin port reports a first table.
    let http_client = reqwest::Client::builder().no_proxy().build().unwrap();
    guarded("the first table", async {
        loop {
            let url = format!("http://127.0.0.1:{admin}/generation");
            if let Ok(r) = http_client.get(&url).send().await {
                if r.text().await.is_ok_and(|t| t.trim() == "1") {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    Running {
        child,
        http: ([127, 0, 0, 1], http).into(),
        _dir: dir,
    }
}

fn sigterm(child: &Child) {
    sigterm_pid(child.id().unwrap());
}

/// Polls until a new connection to `addr` is refused (the listener closed).
async fn wait_refused(addr: SocketAddr) {
    guarded("the listener to close", async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

fn sigterm_pid(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

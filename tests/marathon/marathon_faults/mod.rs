//! Marathon faults (reliability matrix E2, E6, E7, E8, E9, E11, E12) against the in-process simulator or a
//! small stand-in: the empty-list guard, a huge list processed off the proxy's workers, health
//! flapping coalesced, and a start with every Marathon down. Waits are on generations, refresh
//! counts and metrics, never on sleeps.
//!
//! The simulator and source set-up is here; the tests are in `app_lists`, `outages` and
//! `app_changes`.

use crate::support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use support::metric;
use support::proxy::*;
use switchyard::marathon::Credentials;
use switchyard::serve::{Handle, MarathonSource};
use switchyard::sim::simulator::{AppsFault, SimAuth, Simulator, SimulatorOptions, TaskSpec};
use tokio::net::TcpListener;

use super::{source, start};

mod app_changes;
mod app_lists;
mod outages;

const HOST: &str = "web.example.com";
/// Guards against a hang; never a synchronisation point.
const GUARD: Duration = Duration::from_secs(20);

async fn guarded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(GUARD, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

fn web_app() -> Value {
    json!({
        "id": "/web",
        "instances": 1,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": HOST},
        "portDefinitions": [{"port": 10990, "protocol": "tcp"}]
    })
}

async fn simulator(nodes: usize) -> Simulator {
    Simulator::start(SimulatorOptions {
        nodes,
        auth: SimAuth::None,
        heartbeat: Duration::from_millis(50),
    })
    .await
    .unwrap()
}

async fn admin(handle: &Handle, path: &str) -> (u16, String) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{}{path}", handle.admin_addr))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn web_ports(handle: &Handle) -> Vec<u16> {
    web_ports_in(&handle.table.load())
}

fn web_ports_in(table: &switchyard::routing::RoutingTable) -> Vec<u16> {
    let mut ports: Vec<u16> = table
        .route(HOST.as_bytes(), "/")
        .map(|r| {
            r.backend
                .endpoints()
                .iter()
                .map(|e| e.addr.port())
                .collect()
        })
        .unwrap_or_default();
    ports.sort_unstable();
    ports
}

/// Waits (guarded) until the served table satisfies `done`, table by table.
async fn until_table(
    what: &str,
    handle: &Handle,
    done: impl Fn(&switchyard::routing::RoutingTable) -> bool,
) {
    guarded(what, async {
        while !done(&handle.table.load()) {
            let g = handle.generation();
            handle.wait_generation(g + 1).await;
        }
    })
    .await;
}

/// Waits (guarded) until the web app's routed ports satisfy `done`, table by table.
async fn until_web_ports(what: &str, handle: &Handle, done: impl Fn(&[u16]) -> bool) {
    until_table(what, handle, |table| done(&web_ports_in(table))).await;
}

/// A simulator with `/web` on one task at `backend`, and a balancer following its stream,
/// its first table served: the simulator, the task and the balancer.
async fn web_followed(nodes: usize, backend: &Backend) -> (Simulator, String, Handle) {
    let sim = simulator(nodes).await;
    sim.put_app(web_app());
    let task = sim
        .start_task("/web", TaskSpec::running("127.0.0.1", vec![backend.port()]))
        .unwrap();
    let handle = start(source(sim.urls(), Credentials::None)).await;
    guarded("the first table", handle.wait_generation(1)).await;
    guarded("the stream", handle.wait_stream(|s| s.connected.is_some())).await;
    (sim, task, handle)
}

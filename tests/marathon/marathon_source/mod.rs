//! Serve mode following the Marathon simulator's event stream over loopback: changes routed
//! through events, standby redirects, leader changes, auth and re-login, outages, broken
//! documents, stalled streams and event bursts. Tests wait on table generations, refresh counts
//! and the stream's state, never on sleeps.
//!
//! The simulator and source set-up is here; the tests are in `events`, `leaders_and_auth`,
//! `orders`, `outages` and `patches`.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::proxy::*;
use switchyard::marathon::{Credentials, ServiceAccount};
use switchyard::serve::Handle;
use switchyard::sim::simulator::{AppsFault, SimAuth, Simulator, SimulatorOptions, TaskSpec};

use super::{source, start};

mod events;
mod leaders_and_auth;
mod orders;
mod outages;
mod patches;

const HOST: &str = "web.example.com";
const KEY: &str = include_str!("../../fixtures/service-account-key.pem");
const PUBLIC_KEY: &str = include_str!("../../fixtures/service-account-pub.pem");
/// Guards against a hang; never a synchronisation point.
const GUARD: Duration = Duration::from_secs(20);

fn web_app() -> Value {
    json!({
        "id": "/web",
        "instances": 1,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": HOST},
        "portDefinitions": [{"port": 10990, "protocol": "tcp"}]
    })
}

async fn simulator(nodes: usize, auth: SimAuth) -> Simulator {
    Simulator::start(SimulatorOptions {
        nodes,
        auth,
        heartbeat: Duration::from_millis(50),
    })
    .await
    .unwrap()
}

/// A simulator with /web on `backend` (its task id returned), and the balancer serving it with
/// its event stream connected.
async fn serving_web_on(backend: &Backend) -> (Simulator, Handle, String) {
    let sim = simulator(1, SimAuth::None).await;
    sim.put_app(web_app());
    let task = move_web_to(&sim, backend, None);
    let handle = start(source(sim.urls(), Credentials::None)).await;
    routed_to(&handle, backend).await;
    guarded("the stream", handle.wait_stream(|s| s.connected.is_some())).await;
    (sim, handle, task)
}

async fn guarded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(GUARD, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// The balancer's `/metrics`.
async fn metrics_text(handle: &Handle) -> String {
    let url = format!("http://{}/metrics", handle.admin_addr);
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// Waits until the vhost is served by `backend` (a table whose only endpoint is it).
async fn routed_to(handle: &Handle, backend: &Backend) {
    let port = backend.port();
    let mut generation = handle.generation();
    loop {
        let table = handle.table.load();
        let endpoints = endpoints_of(&table, HOST);
        if endpoints == vec![port] {
            break;
        }
        generation = guarded(
            "a table routing to the backend",
            handle.wait_generation(generation + 1),
        )
        .await;
    }
    let c = client();
    let url = format!("http://{}/", handle.http_addr.unwrap());
    assert_eq!(get(&c, &url, HOST).await.1, backend.name);
}

fn endpoints_of(table: &switchyard::routing::RoutingTable, host: &str) -> Vec<u16> {
    let mut ports: Vec<u16> = table
        .route(host.as_bytes(), "/")
        .map(|route| {
            route
                .backend
                .endpoints()
                .iter()
                .map(|e| e.addr.port())
                .collect()
        })
        .unwrap_or_default();
    ports.sort_unstable();
    ports
}

/// Replaces every task of /web with one on `backend`.
fn move_web_to(sim: &Simulator, backend: &Backend, old: Option<&str>) -> String {
    let id = sim
        .start_task("/web", TaskSpec::running("127.0.0.1", vec![backend.port()]))
        .unwrap();
    if let Some(old) = old {
        assert!(sim.kill_task(old));
    }
    id
}

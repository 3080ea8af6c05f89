//! Serve mode following the Marathon simulator's event stream over loopback: changes routed
//! through events, standby redirects, leader changes, auth and re-login, outages, broken
//! documents, stalled streams and event bursts. Tests wait on table generations, refresh counts
//! and the stream's state, never on sleeps.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::proxy::*;
use switchyard::marathon::{Credentials, MarathonConfig, ServiceAccount, StreamOptions};
use switchyard::proxy::ProxyConfig;
use switchyard::serve::{Handle, MarathonSource, Source};
use switchyard::simulator::{AppsFault, SimAuth, Simulator, SimulatorOptions, TaskSpec};

const HOST: &str = "web.example.com";
const KEY: &str = include_str!("../fixtures/service-account-key.pem");
const PUBLIC_KEY: &str = include_str!("../fixtures/service-account-pub.pem");
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

/// Event-stream mode with test-sized timings: quick back-off, a short stall timeout, no
/// resync during the test unless asked.
fn source(urls: Vec<String>, credentials: Credentials) -> MarathonSource {
    MarathonSource {
        stream: StreamOptions {
            stall: Duration::from_millis(500),
            backoff_initial: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
        },
        resync: Duration::from_secs(3600),
        ..MarathonSource::new(MarathonConfig {
            urls,
            credentials,
            ..MarathonConfig::default()
        })
    }
}

/// Starts serve mode without waiting for a first table.
async fn start(source: MarathonSource) -> Handle {
    start_on_loopback(
        Source::Marathon(source),
        Duration::from_secs(3600),
        ProxyConfig::default(),
    )
    .await
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

#[tokio::test]
async fn events_route_changes_and_the_subscription_is_marathon_lb_s() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (sim, handle, task_a) = serving_web_on(&a).await;

    let headers = sim.last_headers("/v2/events").unwrap();
    let accept: Vec<_> = headers.get_all("accept").iter().collect();
    assert_eq!(accept, ["text/event-stream"], "Accept must be exactly this");
    let query = sim.last_query("/v2/events").unwrap();
    assert!(query.starts_with("plan-format=light&"), "{query}");
    for event in [
        "status_update_event",
        "health_status_changed_event",
        "api_post_event",
        "app_terminated_event",
    ] {
        assert!(query.contains(&format!("event_type={event}")), "{query}");
    }
    assert!(
        !query.contains("%2C") && !query.contains(','),
        "one parameter per type: {query}"
    );
    let apps_headers = sim.last_headers("/v2/apps").unwrap();
    assert!(apps_headers["accept-encoding"]
        .to_str()
        .unwrap()
        .contains("gzip"));

    // Only the stream can tell: the resync is an hour away and nothing polls. The events name
    // the app, so only that app is refetched.
    let before = sim.stats();
    move_web_to(&sim, &b, Some(&task_a));
    routed_to(&handle, &b).await;
    let after = sim.stats();
    assert!(after.app_requests > before.app_requests, "{after:?}");
    let query = sim.last_query("/v2/apps/web").unwrap();
    assert_eq!(query, "embed=app.tasks");
    let recent = handle.stream_status().recent;
    assert!(
        recent.iter().any(|e| e.kind == "status_update_event"),
        "{recent:?}"
    );

    // Deleting the app (no api_post_event for that) empties the route.
    let generation = handle.generation();
    assert!(sim.remove_app("/web"));
    guarded("the deletion", handle.wait_generation(generation + 1)).await;
    assert!(endpoints_of(&handle.table.load(), HOST).is_empty());
    handle.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_standby_redirects_to_the_leader_and_a_leader_change_reconnects() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let auth = SimAuth::Basic {
        user: "lb".into(),
        password: "s3cret".into(),
    };
    let sim = simulator(2, auth).await;
    sim.set_leader(1);
    sim.put_app(web_app());
    let task_a = move_web_to(&sim, &a, None);
    // The first URL is a standby: its 302 must be followed with the credentials.
    let credentials = Credentials::basic("lb:s3cret").unwrap();
    let handle = start(source(sim.urls(), credentials)).await;
    routed_to(&handle, &a).await;
    guarded("the stream", handle.wait_stream(|s| s.connected.is_some())).await;
    assert!(sim.stats().redirects >= 1, "{:?}", sim.stats());
    let task_b = move_web_to(&sim, &b, Some(&task_a));
    routed_to(&handle, &b).await;

    // Leadership moves mid-stream: the stream closes and the balancer finds the new leader.
    let connects = handle.stream_status().connects;
    sim.set_leader(0);
    guarded(
        "a reconnect",
        handle.wait_stream(|s| s.connects > connects && s.connected.is_some()),
    )
    .await;
    move_web_to(&sim, &c, Some(&task_b));
    routed_to(&handle, &c).await;
    handle.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn an_expired_token_means_one_new_login_and_nothing_is_lost() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let sim = simulator(
        1,
        SimAuth::ServiceAccount {
            uid: "switchyard".into(),
            public_key_pem: PUBLIC_KEY.into(),
            token_lifetime: Duration::from_secs(3600),
        },
    )
    .await;
    sim.put_app(web_app());
    let task_a = move_web_to(&sim, &a, None);
    let credential = json!({
        "scheme": "RS256", "uid": "switchyard", "private_key": KEY,
        "login_endpoint": sim.login_endpoint()
    });
    let account = ServiceAccount::from_json(&credential.to_string()).unwrap();
    let handle = start(source(sim.urls(), Credentials::ServiceAccount(account))).await;
    routed_to(&handle, &a).await;
    guarded("the stream", handle.wait_stream(|s| s.connected.is_some())).await;
    assert_eq!(
        sim.stats().logins,
        1,
        "one login serves the fetch and the stream"
    );
    let sent = sim.last_headers("/v2/apps").unwrap();
    assert!(sent["authorization"]
        .to_str()
        .unwrap()
        .starts_with("token="));

    // The open stream survives the expiry (Marathon checks at connect); the next fetch gets a
    // 401, logs in once more and goes through.
    sim.expire_tokens();
    let unauthorized = sim.stats().unauthorized;
    move_web_to(&sim, &b, Some(&task_a));
    routed_to(&handle, &b).await;
    let stats = sim.stats();
    assert_eq!(stats.logins, 2, "{stats:?}");
    assert!(stats.unauthorized > unauthorized, "{stats:?}");
    handle.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn wrong_basic_credentials_serve_nothing_and_never_show_the_password() {
    let sim = simulator(
        1,
        SimAuth::Basic {
            user: "lb".into(),
            password: "right".into(),
        },
    )
    .await;
    sim.put_app(web_app());
    let credentials = Credentials::basic("lb:wrong-password").unwrap();
    let handle = start(source(sim.urls(), credentials)).await;
    let status = guarded(
        "a refused stream",
        handle.wait_stream(|s| s.last_error.is_some()),
    )
    .await;
    let error = status.last_error.unwrap();
    assert!(error.contains("401"), "{error}");
    assert!(!error.contains("wrong-password"), "{error}");
    handle.wait_refreshes(1).await;
    assert_eq!(
        handle.generation(),
        0,
        "nothing served without a good fetch"
    );
    assert!(
        sim.stats().unauthorized >= 2,
        "both the fetch and the stream were refused"
    );
    handle.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn an_outage_keeps_the_table_and_changes_made_during_it_are_routed_after() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (sim, handle, task_a) = serving_web_on(&a).await;

    sim.set_down(0, true);
    guarded(
        "the stream to drop",
        handle.wait_stream(|s| s.connected.is_none()),
    )
    .await;
    // Changed while Marathon is unreachable: no event will ever say so.
    move_web_to(&sim, &b, Some(&task_a));
    let c = client();
    let url = format!("http://{}/", handle.http_addr.unwrap());
    assert_eq!(
        get(&c, &url, HOST).await.1,
        "a",
        "the last table keeps serving"
    );

    sim.set_down(0, false);
    // The reconnect resyncs.
    routed_to(&handle, &b).await;
    handle.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn starting_with_every_marathon_down_serves_nothing_until_one_answers() {
    let a = Backend::start("a").await;
    let sim = simulator(2, SimAuth::None).await;
    sim.put_app(web_app());
    move_web_to(&sim, &a, None);
    sim.set_down(0, true);
    sim.set_down(1, true);
    let handle = start(source(sim.urls(), Credentials::None)).await;
    handle.wait_refreshes(2).await;
    assert_eq!(handle.generation(), 0);
    guarded(
        "a failed connect",
        handle.wait_stream(|s| s.last_error.is_some()),
    )
    .await;
    sim.set_down(1, false);
    routed_to(&handle, &a).await;
    handle.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn broken_documents_keep_the_last_table_until_a_good_one() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (sim, handle, task_a) = serving_web_on(&a).await;
    let generation = handle.generation();
    let c = client();
    let url = format!("http://{}/", handle.http_addr.unwrap());
    let mut task = task_a;
    let backends = [&b, &a, &b, &a, &a, &b];
    for (fault, backend) in [
        AppsFault::Garbage,
        AppsFault::Truncated,
        AppsFault::WrongTyped,
        AppsFault::Status(503),
        AppsFault::Html(503),
        AppsFault::Status(500),
    ]
    .into_iter()
    .zip(backends)
    {
        sim.set_apps_fault(fault);
        let refreshes = handle.refreshes();
        task = move_web_to(&sim, backend, Some(&task));
        guarded("a failed read", handle.wait_refreshes(refreshes + 1)).await;
        assert_eq!(handle.generation(), generation, "{fault:?} built a table");
        assert!(
            handle.read_status().error.is_some(),
            "{fault:?}: the failure is exposed"
        );
        let still = get(&c, &url, HOST).await.1;
        assert_eq!(still, "a", "{fault:?}: the last good table serves");
    }
    // Fixed: the retry picks the change up without another event.
    sim.set_apps_fault(AppsFault::None);
    routed_to(&handle, &b).await;
    let status = handle.read_status();
    assert!(
        status.error.is_none() && status.last_success.is_some(),
        "{status:?}"
    );
    handle.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn one_malformed_app_does_not_hold_back_the_others() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (sim, handle, task_a) = serving_web_on(&a).await;
    let mut broken = web_app();
    broken["id"] = json!("/broken");
    broken["portDefinitions"] = json!("not a list");
    sim.put_app(broken);
    move_web_to(&sim, &b, Some(&task_a));
    routed_to(&handle, &b).await;
    let report =
        serde_json::to_string(&switchyard::report::RoutesReport::new(&handle.table.load()))
            .unwrap();
    assert!(
        report.contains("/broken"),
        "the bad app is reported: {report}"
    );
    handle.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_stalled_stream_is_reconnected() {
    let a = Backend::start("a").await;
    let (sim, handle, _) = serving_web_on(&a).await;
    let connects = handle.stream_status().connects;
    sim.stop_stream_heartbeats(true);
    let status = guarded(
        "the stall",
        handle.wait_stream(|s| {
            s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("stalled"))
        }),
    )
    .await;
    assert!(status.connects >= connects);
    sim.stop_stream_heartbeats(false);
    guarded(
        "a reconnect",
        handle.wait_stream(|s| s.connects > connects && s.connected.is_some()),
    )
    .await;
    handle.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_periodic_resync_runs_without_events() {
    let sim = simulator(1, SimAuth::None).await;
    sim.put_app(web_app());
    let mut source = source(sim.urls(), Credentials::None);
    source.resync = Duration::from_millis(50);
    let handle = start(source).await;
    let refreshes = handle.refreshes();
    guarded("resyncs", handle.wait_refreshes(refreshes + 5)).await;
    assert!(sim.stats().apps_requests >= 5);
    handle.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_a_thousand_events_costs_a_handful_of_fetches() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (sim, handle, task_a) = serving_web_on(&a).await;
    let events = handle.stream_status().events;
    let fetches = sim.stats().apps_requests + sim.stats().app_requests;

    // 1,000 status updates over about a second, with the real change in the middle.
    let started = tokio::time::Instant::now();
    for i in 0..1000u32 {
        if i == 500 {
            move_web_to(&sim, &b, Some(&task_a));
        }
        sim.emit(
            "status_update_event",
            json!({"appId": "/other", "taskId": format!("other.{i}"), "taskStatus": "TASK_RUNNING"}),
        );
        if i % 100 == 99 {
            tokio::time::sleep_until(started + Duration::from_millis(100) * (i + 1) / 100).await;
        }
    }
    guarded(
        "every event",
        handle.wait_stream(|s| s.events >= events + 1000),
    )
    .await;
    routed_to(&handle, &b).await;
    // The bucket's four, then one refetch per 250 ms over ~1 s, plus a trailing one. (A
    // trailing fetch still to come would add one; this bound leaves room for it.)
    let spent = sim.stats().apps_requests + sim.stats().app_requests - fetches;
    assert!(spent <= 10, "{spent} fetches for 1,000 events");
    eprintln!("1,000 events in {:?} → {spent} fetches", started.elapsed());
    handle.shutdown().await;
    sim.shutdown().await;
}

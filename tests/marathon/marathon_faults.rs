//! Marathon faults (reliability matrix E2, E6, E7, E8, E9, E11, E12) against the in-process simulator or a
//! small stand-in: the empty-list guard, a huge list processed off the proxy's workers, health
//! flapping coalesced, and a start with every Marathon down. Waits are on generations, refresh
//! counts and metrics, never on sleeps.

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
use switchyard::marathon::{Credentials, MarathonConfig, StreamOptions};
use switchyard::proxy::ProxyConfig;
use switchyard::serve::{Handle, MarathonSource, Source};
use switchyard::simulator::{AppsFault, SimAuth, Simulator, SimulatorOptions, TaskSpec};
use tokio::net::TcpListener;

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

/// Event-stream mode with test-sized timings and no resync during the test.
fn source(urls: Vec<String>) -> MarathonSource {
    MarathonSource {
        stream: StreamOptions {
            stall: Duration::from_millis(500),
            backoff_initial: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
        },
        resync: Duration::from_secs(3600),
        ..MarathonSource::new(MarathonConfig {
            urls,
            credentials: Credentials::None,
            ..MarathonConfig::default()
        })
    }
}

async fn start(source: MarathonSource) -> Handle {
    start_on_loopback(
        Source::Marathon(source),
        Duration::from_secs(3600),
        ProxyConfig::default(),
    )
    .await
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
    let handle = start(source(sim.urls())).await;
    guarded("the first table", handle.wait_generation(1)).await;
    guarded("the stream", handle.wait_stream(|s| s.connected.is_some())).await;
    (sim, task, handle)
}

/// E8: Marathon answering an empty app list right after a list with apps is not believed at
/// once: the routes stay, one warning, `switchyard_snapshots_held_total`, `/stats` shows it. A
/// read within the confirmation interval does not apply it either; the confirming read the
/// balancer schedules itself (at least the interval later) does, so an operator can still
/// empty the table. A good list in between cancels the hold.
#[tokio::test]
async fn e8_an_empty_app_list_is_held_until_a_later_read_confirms_it() {
    let a = Backend::start("a").await;
    let sim = simulator(1).await;
    sim.put_app(web_app());
    sim.start_task("/web", TaskSpec::running("127.0.0.1", vec![a.port()]))
        .unwrap();
    let confirm = Duration::from_secs(2);
    let mut source = source(sim.urls());
    source.empty_list_confirm = confirm;
    let handle = start(source).await;
    guarded("the first table", handle.wait_generation(1)).await;
    assert_eq!(web_ports(&handle), vec![a.port()]);
    let url = format!("http://{}/", handle.http_addr.unwrap());
    let c = client();
    let generation = handle.generation();

    // A good list in between cancels a hold.
    sim.set_apps_fault(AppsFault::Empty);
    let refreshes = handle.refreshes();
    handle.reload();
    guarded("the empty read", handle.wait_refreshes(refreshes + 1)).await;
    let held_at = Instant::now();
    assert_eq!(
        handle.generation(),
        generation,
        "one empty list built a table"
    );
    assert_eq!(get(&c, &url, HOST).await.1, "a", "the routes stay");
    let (_, metrics) = admin(&handle, "/metrics").await;
    assert_eq!(metric(&metrics, "switchyard_snapshots_held_total"), 1.0);
    let (_, stats) = admin(&handle, "/stats").await;
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert!(stats["held_empty_list_since_unix_ms"].is_u64(), "{stats}");

    // An early second read (well within the interval) does not confirm it.
    let refreshes = handle.refreshes();
    handle.reload();
    guarded("an early read", handle.wait_refreshes(refreshes + 1)).await;
    if held_at.elapsed() < confirm {
        assert_eq!(handle.generation(), generation, "confirmed too early");
        assert_eq!(get(&c, &url, HOST).await.1, "a");
    }

    // Marathon recovers: the hold is dropped, nothing was built.
    sim.set_apps_fault(AppsFault::None);
    let refreshes = handle.refreshes();
    handle.reload();
    guarded("a good read", handle.wait_refreshes(refreshes + 1)).await;
    let (_, stats) = admin(&handle, "/stats").await;
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert!(stats["held_empty_list_since_unix_ms"].is_null(), "{stats}");
    assert_eq!(get(&c, &url, HOST).await.1, "a");

    // Empty for real: held once more, then the balancer's own confirming read applies it.
    sim.set_apps_fault(AppsFault::Empty);
    let refreshes = handle.refreshes();
    handle.reload();
    guarded("the empty read", handle.wait_refreshes(refreshes + 1)).await;
    let held_at = Instant::now();
    let before = handle.generation();
    let (_, metrics) = admin(&handle, "/metrics").await;
    assert_eq!(metric(&metrics, "switchyard_snapshots_held_total"), 2.0);
    guarded("the confirming read", handle.wait_generation(before + 1)).await;
    assert!(
        held_at.elapsed() + Duration::from_millis(50) >= confirm,
        "applied after {:?}, before the confirmation interval",
        held_at.elapsed()
    );
    assert!(
        web_ports(&handle).is_empty(),
        "the operator emptied it: no routes"
    );
    let (status, _, _) = get(&c, &url, HOST).await;
    assert_eq!(status, 503);
    let (_, metrics) = admin(&handle, "/metrics").await;
    assert_eq!(
        metric(&metrics, "switchyard_snapshots_held_total"),
        2.0,
        "counted once per hold"
    );
    handle.shutdown().await;
    sim.shutdown().await;
}

/// A stand-in Marathon for E6: `/v2/apps` answers whatever document it holds now, and counts
/// the answers.
struct DocumentServer {
    url: String,
    document: Arc<Mutex<Bytes>>,
    answers: Arc<AtomicUsize>,
}

impl DocumentServer {
    async fn start(document: Bytes) -> DocumentServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let document = Arc::new(Mutex::new(document));
        let answers = Arc::new(AtomicUsize::new(0));
        let (d, n) = (document.clone(), answers.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let (d, n) = (d.clone(), n.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| {
                        let body = d.lock().unwrap().clone();
                        n.fetch_add(1, Ordering::SeqCst);
                        async move {
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(body))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), service)
                        .await;
                });
            }
        });
        DocumentServer {
            url,
            document,
            answers,
        }
    }
}

/// `{"apps": [...]}` with /web on `web_port` and `n` more apps of three tasks each, written as
/// Marathon writes them.
fn big_document(web_port: u16, n: usize) -> Bytes {
    let mut apps = vec![json!({
        "id": "/web",
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": HOST},
        "portDefinitions": [{"port": 10990}],
        "tasks": [{"id": "web.1", "appId": "/web", "host": "127.0.0.1", "state": "TASK_RUNNING", "ports": [web_port]}],
    })];
    for i in 0..n {
        let id = format!("/big/app-{i:05}");
        apps.push(json!({
            "id": id,
            "instances": 3,
            "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": format!("app-{i}.big.example.com")},
            "portDefinitions": [{"port": 11000 + i, "protocol": "tcp"}],
            "tasks": (0..3).map(|t| json!({
                "id": format!("big_app-{i:05}.instance-{t}._app.1"),
                "appId": id,
                "host": format!("127.0.{}.{}", t, i % 250 + 1),
                "state": "TASK_RUNNING",
                "ports": [20000 + i % 40000],
                "startedAt": "2026-11-26T10:00:00.000Z",
                "version": "2026-11-26T09:59:00.000Z",
            })).collect::<Vec<_>>(),
        }));
    }
    Bytes::from(serde_json::to_vec(&json!({ "apps": apps })).unwrap())
}

/// E6: while a big app list is parsed and built, the proxy and the admin port keep answering.
/// The window is exact: from the moment the read is counted (the whole body received; parse
/// and build follow with no wait in between) until the new table is served. On this
/// single-threaded runtime, parsing or building on the async worker would leave no room for
/// any request inside that window.
#[tokio::test]
async fn e6_a_big_app_list_is_processed_while_requests_keep_being_answered() {
    let web = Backend::start("web").await;
    let server = DocumentServer::start(big_document(web.port(), 0)).await;
    let source = MarathonSource {
        events: false,
        ..source(vec![server.url.clone()])
    };
    let handle = start(source).await;
    guarded("the first table", handle.wait_generation(1)).await;
    let url = format!("http://{}/", handle.http_addr.unwrap());
    let c = client();
    assert_eq!(get(&c, &url, HOST).await.1, "web");

    let big = big_document(web.port(), 3000);
    eprintln!("big document: {} bytes", big.len());
    *server.document.lock().unwrap() = big;
    handle.reload();
    let mut answered_inside = 0;
    let mut scrapes = 0;
    while handle.generation() < 2 {
        let (status, metrics) = admin(&handle, "/metrics").await;
        assert_eq!(status, 200);
        scrapes += 1;
        let received = metric(
            &metrics,
            "switchyard_marathon_refetches_total{kind=\"full\"}",
        ) >= 2.0;
        let old_table = metric(&metrics, "switchyard_table_generation") < 2.0;
        if received && old_table {
            // Inside the window: parse or build is running. Both ports answer.
            let (status, backend, _) = get(&c, &url, HOST).await;
            assert_eq!((status, backend.as_str()), (200, "web"));
            let (status, _) = admin(&handle, "/healthz").await;
            assert_eq!(status, 200);
            if handle.generation() < 2 {
                answered_inside += 1;
            }
        }
        assert!(scrapes < 1_000_000);
    }
    eprintln!("{answered_inside} proxied requests answered while the list was processed");
    assert!(
        answered_inside > 0,
        "nothing was answered while the list was processed"
    );
    assert_eq!(server.answers.load(Ordering::SeqCst), 2);
    let table = handle.table.load();
    assert!(table.route(b"app-2999.big.example.com", "/").is_some());
    handle.shutdown().await;
}

/// E9: a task's health flapping every 100 ms for two seconds: rebuilds are coalesced (about
/// one per refresh interval, not one per event), and a client of the app sees no error, since
/// its other task stays healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e9_health_flapping_is_coalesced_and_costs_no_request() {
    let (steady, flapping) = (
        Backend::start("steady").await,
        Backend::start("flapping").await,
    );
    let sim = simulator(1).await;
    let mut app = web_app();
    app["healthChecks"] = json!([{"protocol": "MESOS_HTTP", "path": "/health", "portIndex": 0}]);
    sim.put_app(app);
    let steady_task = sim
        .start_task("/web", TaskSpec::running("127.0.0.1", vec![steady.port()]))
        .unwrap();
    let flapping_task = sim
        .start_task(
            "/web",
            TaskSpec::running("127.0.0.1", vec![flapping.port()]),
        )
        .unwrap();
    assert!(sim.set_task_health(&steady_task, true));
    assert!(sim.set_task_health(&flapping_task, true));
    // A long stall timeout: on a loaded machine a late heartbeat must not reconnect the
    // stream (and lose events) in the middle of the flapping.
    let mut source = source(sim.urls());
    source.stream.stall = Duration::from_secs(10);
    let handle = start(source).await;
    until_web_ports("both tasks routed", &handle, |p| p.len() >= 2).await;
    guarded("the stream", handle.wait_stream(|s| s.connected.is_some())).await;

    let url = format!("http://{}/", handle.http_addr.unwrap());
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let client_task = {
        let (url, running) = (url.clone(), running.clone());
        tokio::spawn(async move {
            let c = client();
            let (mut ok, mut failed) = (0, 0);
            while running.load(Ordering::SeqCst) {
                match get(&c, &url, HOST).await.0 {
                    200 => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed)
        })
    };
    let generation = handle.generation();
    let events = handle.stream_status().events;
    const FLAPS: u32 = 20;
    let started = tokio::time::Instant::now();
    for i in 0..FLAPS {
        // Pacing, not synchronisation: one change every 100 ms.
        tokio::time::sleep_until(started + Duration::from_millis(100) * i).await;
        assert!(sim.set_task_health(&flapping_task, i % 2 == 1));
    }
    // Healthy again at the end (the last flap is i = 19: alive).
    guarded(
        "the health events",
        handle.wait_stream(|s| s.events >= events + u64::from(FLAPS)),
    )
    .await;
    until_web_ports("the flapping task back", &handle, |p| p.len() >= 2).await;
    running.store(false, Ordering::SeqCst);
    let (ok, failed) = client_task.await.unwrap();
    let rebuilds = handle.generation() - generation;
    let elapsed = started.elapsed();
    eprintln!("{FLAPS} health changes over {elapsed:?}: {rebuilds} rebuilds; {ok} requests ok, {failed} failed");
    assert_eq!(failed, 0, "requests failed while a task flapped");
    assert!(ok > 0);
    // The refresh bucket's four, then one per 250 ms interval over the run, plus a trailing one.
    let bound = 4 + (elapsed.as_millis() / 250) as u64 + 2;
    assert!(
        rebuilds <= bound,
        "{rebuilds} rebuilds for {FLAPS} changes (bound {bound})"
    );
    assert!(rebuilds < u64::from(FLAPS), "not one rebuild per change");
    handle.shutdown().await;
    sim.shutdown().await;
}

/// E12: started with every Marathon down: nothing is served, `/readyz` says not ready, the
/// balancer keeps retrying, and routes come once one Marathon answers.
#[tokio::test]
async fn e12_started_with_every_marathon_down_it_is_not_ready_until_one_answers() {
    let a = Backend::start("a").await;
    let sim = simulator(2).await;
    sim.put_app(web_app());
    sim.start_task("/web", TaskSpec::running("127.0.0.1", vec![a.port()]))
        .unwrap();
    sim.set_down(0, true);
    sim.set_down(1, true);
    let handle = start(source(sim.urls())).await;
    guarded("retries", handle.wait_refreshes(3)).await;
    assert_eq!(handle.generation(), 0);
    let (status, text) = admin(&handle, "/readyz").await;
    assert_eq!(status, 503, "{text}");
    let (status, _) = admin(&handle, "/healthz").await;
    assert_eq!(status, 200, "alive, though not ready");
    let url = format!("http://{}/", handle.http_addr.unwrap());
    let (status, _, _) = get(&client(), &url, HOST).await;
    assert_eq!(status, 503, "nothing to serve");
    assert!(handle.read_status().error.is_some());

    sim.set_down(1, false);
    guarded("the first table", handle.wait_generation(1)).await;
    let (status, _) = admin(&handle, "/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(get(&client(), &url, HOST).await.1, "a");
    handle.shutdown().await;
    sim.shutdown().await;
}

/// E2: a leader election (every Marathon answers 503 "Could not determine the current leader"
/// and drops its streams): the table is kept and keeps serving, the failure is exposed, and a
/// change made during the election is routed once a leader is back.
#[tokio::test]
async fn e2_an_election_keeps_the_table_and_changes_made_during_it_are_routed_after() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (sim, task_a, handle) = web_followed(2, &a).await;
    let generation = handle.generation();
    let url = format!("http://{}/", handle.http_addr.unwrap());
    let c = client();

    sim.set_election(true);
    guarded(
        "the stream to drop",
        handle.wait_stream(|s| s.connected.is_none()),
    )
    .await;
    // Changed during the election: the event is lost with the stream.
    sim.start_task("/web", TaskSpec::running("127.0.0.1", vec![b.port()]))
        .unwrap();
    assert!(sim.kill_task(&task_a));
    let refreshes = handle.refreshes();
    handle.reload();
    guarded(
        "a read during the election",
        handle.wait_refreshes(refreshes + 1),
    )
    .await;
    let error = handle.read_status().error.unwrap_or_default();
    assert!(error.contains("503"), "{error}");
    assert_eq!(handle.generation(), generation, "a 503 built a table");
    for _ in 0..5 {
        assert_eq!(get(&c, &url, HOST).await.1, "a", "the last table serves");
    }

    sim.set_election(false);
    until_web_ports("the change routed after the election", &handle, |p| {
        p == [b.port()]
    })
    .await;
    assert_eq!(get(&c, &url, HOST).await.1, "b");
    assert!(handle.read_status().error.is_none());
    handle.shutdown().await;
    sim.shutdown().await;
}

/// E11: garbage on the event stream and a slow drip. An event the balancer cannot read is a
/// hint to read everything again, never a crash or a stuck stream; a frame arriving a byte at a
/// time holds up no request and no other part of the balancer, and is acted on once whole.
#[tokio::test]
async fn e11_garbage_and_a_slow_drip_on_the_event_stream_resync_and_block_nothing() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (sim, task_a, handle) = web_followed(1, &a).await;
    let url = format!("http://{}/", handle.http_addr.unwrap());
    let c = client();

    // Garbage: unreadable JSON, JSON of the wrong shape, binary bytes, a frame without an
    // event name, a comment, a data line far longer than any event.
    let refreshes = handle.refreshes();
    let long = format!(
        "event: status_update_event\r\ndata: {{\"appId\": \"{}\"}}\r\n\r\n",
        "x".repeat(256 * 1024)
    );
    let frames: [&[u8]; 6] = [
        b"event: status_update_event\r\ndata: {not json\r\n\r\n",
        b"event: status_update_event\r\ndata: [1, 2, 3]\r\n\r\n",
        b"event: status_update_event\r\ndata: \x00\x01\xff\xfe\r\n\r\n",
        b"data: an event without a name\r\n\r\n",
        b": a comment line\r\n\r\n",
        long.as_bytes(),
    ];
    for frame in frames {
        sim.emit_raw("status_update_event", frame, None);
    }
    guarded(
        "a read of everything after the garbage",
        handle.wait_refreshes(refreshes + 1),
    )
    .await;
    assert_eq!(get(&c, &url, HOST).await.1, "a", "the table still serves");

    // A real change after the garbage is routed.
    sim.start_task("/web", TaskSpec::running("127.0.0.1", vec![b.port()]))
        .unwrap();
    assert!(sim.kill_task(&task_a));
    until_web_ports("the change after the garbage", &handle, |p| p == [b.port()]).await;
    assert_eq!(get(&c, &url, HOST).await.1, "b");
    guarded("the stream", handle.wait_stream(|s| s.connected.is_some())).await;

    // A slow drip: one event, a byte every 20 ms (about 2 s). Requests and the admin port
    // answer meanwhile; the stream is not dropped as stalled (bytes keep coming); once the
    // frame is whole, the app it names is read again.
    let (_, before) = admin(&handle, "/metrics").await;
    let connects = metric(&before, "switchyard_marathon_stream_connects");
    assert!(connects >= 1.0, "the stream's connects are counted");
    let refreshes = handle.refreshes();
    sim.emit_raw(
        "status_update_event",
        b"event: status_update_event\r\ndata: {\"eventType\":\"status_update_event\",\"appId\":\"/web\",\"taskStatus\":\"TASK_RUNNING\"}\r\n\r\n",
        Some(Duration::from_millis(20)),
    );
    for _ in 0..10 {
        assert_eq!(get(&c, &url, HOST).await.1, "b");
        assert_eq!(admin(&handle, "/_haproxy_health_check").await.0, 200);
    }
    guarded(
        "the dripped event acted on",
        handle.wait_refreshes(refreshes + 1),
    )
    .await;
    let (_, after) = admin(&handle, "/metrics").await;
    assert_eq!(
        metric(&after, "switchyard_marathon_stream_connects"),
        connects,
        "the drip did not cost the stream"
    );
    assert_eq!(get(&c, &url, HOST).await.1, "b");
    handle.shutdown().await;
    sim.shutdown().await;
}

fn problem_of<'t>(
    table: &'t switchyard::routing::RoutingTable,
    app: &str,
    kind: &str,
) -> Option<&'t switchyard::model::Problem> {
    table
        .problems()
        .iter()
        .find(|p| p.app_id.as_deref() == Some(app) && p.kind.as_str() == kind)
}

/// E7: an app whose labels turn invalid, and then whose definition cannot be read at all, keeps
/// serving with its last good configuration (on its current tasks while they can be read),
/// each time reported with app and label; another app's changes made meanwhile are routed.
/// Fixed labels take over at once.
#[tokio::test]
async fn e7_an_app_whose_labels_turn_bad_keeps_its_last_good_routes_and_the_others_update() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (sim, _task, handle) = web_followed(1, &a).await;
    let url = format!("http://{}/", handle.http_addr.unwrap());
    let c = client();
    let api = |vhost: &str| {
        json!({
            "id": "/api",
            "instances": 1,
            "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": vhost},
            "portDefinitions": [{"port": 10991, "protocol": "tcp"}]
        })
    };
    sim.put_app(api("api1.example.com"));
    sim.start_task("/api", TaskSpec::running("127.0.0.1", vec![b.port()]))
        .unwrap();
    until_table("api1 routed", &handle, |t| {
        t.route(b"api1.example.com", "/").is_some()
    })
    .await;

    // A CR/LF in the vhost (header injection) and an unusable port: both invalid.
    let mut bad = web_app();
    bad["labels"]["HAPROXY_0_VHOST"] = json!("web.example.com\r\nX-Injected: 1");
    bad["labels"]["HAPROXY_0_BALANCE"] = json!("fastest");
    sim.put_app(bad);
    sim.put_app(api("api2.example.com"));
    until_table("api2 routed", &handle, |t| {
        t.route(b"api2.example.com", "/").is_some()
    })
    .await;
    let table = handle.table.load();
    assert!(
        table.route(b"api1.example.com", "/").is_none(),
        "api updated"
    );
    let problem = problem_of(&table, "/web", "invalid_label").expect("the bad label is reported");
    assert!(
        problem
            .label
            .as_deref()
            .is_some_and(|l| l.starts_with("HAPROXY_0_")),
        "{problem:?}"
    );
    assert!(problem.message.contains("last good"), "{problem:?}");
    for _ in 0..5 {
        assert_eq!(
            get(&c, &url, HOST).await.1,
            "a",
            "the last good labels serve"
        );
    }

    // Its tasks still count: a new task is routed under the last good labels.
    sim.start_task("/web", TaskSpec::running("127.0.0.1", vec![b.port()]))
        .unwrap();
    until_web_ports("the new task routed", &handle, |p| {
        p.len() == 2 && p.contains(&b.port())
    })
    .await;

    // Unreadable altogether: the app keeps its last good services.
    let mut broken = web_app();
    broken["portDefinitions"] = json!("not a list");
    sim.put_app(broken);
    sim.put_app(api("api3.example.com"));
    until_table("api3 routed", &handle, |t| {
        t.route(b"api3.example.com", "/").is_some()
    })
    .await;
    let table = handle.table.load();
    let problem = problem_of(&table, "/web", "malformed_app").expect("the bad app is reported");
    assert!(problem.message.contains("last good"), "{problem:?}");
    assert_eq!(web_ports(&handle).len(), 2, "still served");
    assert!(!get(&c, &url, HOST).await.1.is_empty());

    // Fixed: the new labels apply and the problems are gone.
    let mut fixed = web_app();
    fixed["labels"]["HAPROXY_0_VHOST"] = json!("web2.example.com");
    sim.put_app(fixed);
    until_table("the fixed labels", &handle, |t| {
        t.route(b"web2.example.com", "/").is_some()
    })
    .await;
    let table = handle.table.load();
    assert!(
        table.route(HOST.as_bytes(), "/").is_none(),
        "old vhost gone"
    );
    assert!(problem_of(&table, "/web", "invalid_label").is_none());
    assert!(problem_of(&table, "/web", "malformed_app").is_none());
    handle.shutdown().await;
    sim.shutdown().await;
}

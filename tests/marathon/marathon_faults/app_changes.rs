//! Apps changing under the balancer: health flapping coalesced (E9), and an app whose labels turn
//! bad keeping its last good routes while the others update (E7).

use super::*;

/// E9: a task's health flapping every 100 ms for two seconds: the reads of Marathon are
/// coalesced (about one per refresh interval, not one per event), each change is served from
/// its event (one table swap per change, never more), and a client of the app sees no error,
/// since its other task stays healthy.
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
    let mut source = source(sim.urls(), Credentials::None);
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
    let reads_before = sim.stats();
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
    let after = sim.stats();
    let reads = (after.apps_requests - reads_before.apps_requests)
        + (after.app_requests - reads_before.app_requests);
    eprintln!("{FLAPS} health changes over {elapsed:?}: {reads} reads, {rebuilds} rebuilds; {ok} requests ok, {failed} failed");
    assert_eq!(failed, 0, "requests failed while a task flapped");
    assert!(ok > 0);
    // The refresh bucket's four, then one per 250 ms interval over the run, plus a trailing one.
    let bound = 4 + (elapsed.as_millis() / 250) as u64 + 2;
    assert!(
        reads <= bound,
        "{reads} reads of Marathon for {FLAPS} changes (bound {bound})"
    );
    assert!(reads < u64::from(FLAPS), "not one read per change");
    // Each change is a swap of its own; a read that agrees with the patches swaps nothing.
    assert!(
        rebuilds <= u64::from(FLAPS) + 2,
        "{rebuilds} rebuilds for {FLAPS} changes"
    );
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

//! Changes routed through the event stream (with Marathon-LB's subscription), a stalled stream
//! reconnected, the periodic resync, and a burst of events costing a handful of fetches.

use super::*;

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
    // The status page lists each event with the app it names.
    let stats: Value = client()
        .get(format!("http://{}/stats", handle.admin_addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recent = stats["stream"]["recent"].as_array().unwrap();
    assert!(
        recent
            .iter()
            .any(|e| e["type"] == "status_update_event" && e["apps"] == json!(["/web"])),
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

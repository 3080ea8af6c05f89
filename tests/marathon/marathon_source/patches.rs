//! Events patch, reads confirm: what an event carries is served before any read, a read that
//! disagrees wins (and is counted), an app's new labels are served after its confirming read.

use super::*;

use support::metric;

#[tokio::test]
async fn a_read_that_contradicts_an_event_wins() {
    let (a, ghost) = (Backend::start("a").await, Backend::start("ghost").await);
    let (sim, handle, _task_a) = serving_web_on(&a).await;
    // Reads fail, so only the event can route the task it reports: one Marathon never had.
    sim.set_apps_fault(AppsFault::Status(503));
    sim.emit(
        "status_update_event",
        json!({"appId": "/web", "taskId": "web.ghost", "taskStatus": "TASK_RUNNING",
               "host": "127.0.0.1", "ports": [ghost.port()], "version": "2026-01-01T00:00:00.000Z"}),
    );
    let mut generation = handle.generation();
    loop {
        let endpoints = endpoints_of(&handle.table.load(), HOST);
        if endpoints.contains(&ghost.port()) {
            break;
        }
        generation = guarded("the event's task", handle.wait_generation(generation + 1)).await;
    }
    assert!(
        metric(
            &metrics_text(&handle).await,
            "switchyard_marathon_event_patches_total"
        ) >= 1.0
    );

    // The reads work again: the one that confirms the event says otherwise, and wins.
    sim.set_apps_fault(AppsFault::None);
    routed_to(&handle, &a).await;
    let text = metrics_text(&handle).await;
    assert!(
        metric(&text, "switchyard_marathon_read_corrections_total") >= 1.0,
        "{text}"
    );
    handle.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn an_app_s_new_labels_are_served_after_its_confirming_read() {
    let a = Backend::start("a").await;
    let (sim, handle, _task) = serving_web_on(&a).await;
    let c = client();
    let url = format!("http://{}/", handle.http_addr.unwrap());
    let mut relabelled = web_app();
    relabelled["labels"]["HAPROXY_0_VHOST"] = json!("new.example.com");
    let refreshes = handle.refreshes();
    sim.put_app(relabelled);
    guarded("the confirming read", handle.wait_refreshes(refreshes + 1)).await;
    let mut generation = handle.generation();
    while !endpoints_of(&handle.table.load(), HOST).is_empty() {
        generation = guarded("the new labels", handle.wait_generation(generation + 1)).await;
    }
    assert_eq!(get(&c, &url, HOST).await.0, 503, "the old vhost is gone");
    assert_eq!(get(&c, &url, "new.example.com").await.1, "a");
    handle.shutdown().await;
    sim.shutdown().await;
}

/// Marathon 1.4+ health events name the instance, not the task: its tasks are routed (and
/// dropped) from them while every read fails.
#[tokio::test]
async fn instance_health_events_route_and_drop_tasks_before_any_read() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let sim = simulator(1, SimAuth::None).await;
    let mut checked = web_app();
    checked["healthChecks"] = json!([{"protocol": "HTTP", "path": "/", "portIndex": 0}]);
    sim.put_app(checked);
    let task_a = move_web_to(&sim, &a, None);
    sim.set_task_health(&task_a, true);
    let handle = start(source(sim.urls(), Credentials::None)).await;
    routed_to(&handle, &a).await;
    guarded("the stream", handle.wait_stream(|s| s.connected.is_some())).await;

    sim.set_apps_fault(AppsFault::Status(503));
    // Running but not yet checked: not routed.
    let task_b = move_web_to(&sim, &b, None);
    let mut generation = handle.generation();
    sim.set_task_health(&task_b, true);
    loop {
        if endpoints_of(&handle.table.load(), HOST)
            == vec![a.port().min(b.port()), a.port().max(b.port())]
        {
            break;
        }
        generation = guarded("the healthy task", handle.wait_generation(generation + 1)).await;
    }
    sim.set_task_health(&task_a, false);
    routed_to(&handle, &b).await;
    handle.shutdown().await;
    sim.shutdown().await;
}

/// A read sent before an event, landing after it, does not undo what the event patched in (it
/// would route a task Marathon already reported killed): the read owed to the event decides.
#[tokio::test]
async fn a_read_older_than_an_event_does_not_undo_its_patch() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let (sim, handle, task_a) = serving_web_on(&a).await;
    sim.hold_reads(true);
    // The events route b at once; the read they owe is rendered now (b) and held.
    let task_b = move_web_to(&sim, &b, Some(&task_a));
    routed_to(&handle, &b).await;
    guarded("the held read", sim.wait_held_reads(1)).await;
    // Then c replaces b: patched in while the read that says "b" is on its way.
    move_web_to(&sim, &c, Some(&task_b));
    routed_to(&handle, &c).await;
    let refreshes = handle.refreshes();
    sim.hold_reads(false);
    guarded("the old read", handle.wait_refreshes(refreshes + 1)).await;
    assert_eq!(
        endpoints_of(&handle.table.load(), HOST),
        vec![c.port()],
        "the read older than the kill of b does not route b again"
    );
    guarded(
        "the read owed to c's events",
        handle.wait_refreshes(refreshes + 2),
    )
    .await;
    routed_to(&handle, &c).await;
    handle.shutdown().await;
    sim.shutdown().await;
}

/// A task an event adds gets its active health check, and a task an event removes loses it:
/// the checkers follow a patched table (which shares the last one's indexes) backend by
/// backend.
#[tokio::test]
async fn active_health_checks_follow_the_tasks_events_add_and_remove() {
    let (well, sick) = (Backend::start("well").await, Backend::start("sick").await);
    let sim = simulator(1, SimAuth::None).await;
    let mut checked = web_app();
    checked["healthChecks"] = json!([{"protocol": "HTTP", "path": "/health", "portIndex": 0,
        "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 0}]);
    sim.put_app(checked);
    let task_well = move_web_to(&sim, &well, None);
    sim.set_task_health(&task_well, true);
    let handle = start(source(sim.urls(), Credentials::None)).await;
    routed_to(&handle, &well).await;
    guarded("the stream", handle.wait_stream(|s| s.connected.is_some())).await;

    let task_sick = move_web_to(&sim, &sick, None);
    sim.set_task_health(&task_sick, true);
    let mut generation = handle.generation();
    let sick_state = loop {
        let table = handle.table.load();
        let target = table.route(HOST.as_bytes(), "/").and_then(|route| {
            let targets = &route.backend.targets;
            let target = targets.iter().find(|t| t.addr() == sick.addr)?;
            Some(target.state.clone())
        });
        if let Some(state) = target {
            break state;
        }
        generation = guarded("the sick task", handle.wait_generation(generation + 1)).await;
    };
    guarded("its first failed check", async {
        while !sick_state.is_down() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // Its checker stops with the task, and a stopped checker clears its verdict.
    assert!(sim.kill_task(&task_sick));
    guarded("the checker to stop", async {
        while sick_state.is_down() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    routed_to(&handle, &well).await;
    handle.shutdown().await;
    sim.shutdown().await;
}

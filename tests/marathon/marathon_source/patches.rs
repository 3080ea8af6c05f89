//! Events patch, reads confirm: what an event carries is served before any read, a read that
//! disagrees wins (and is counted), an app's new labels are served after its confirming read.

use super::*;

use support::metric;

async fn metrics_text(handle: &Handle) -> String {
    let url = format!("http://{}/metrics", handle.admin_addr);
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

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

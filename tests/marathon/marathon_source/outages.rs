//! Marathon down or wrong: an outage keeps the table, a start with every Marathon down, broken
//! documents keep the last table, and one malformed app does not hold back the others.

use super::*;

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

/// Events patch, reads confirm: while every read of Marathon fails (broken documents, 5xx),
/// what the events carry is still served, the broken documents are never applied, and the
/// failure is exposed; once reads work again they confirm the same table.
#[tokio::test]
async fn broken_documents_are_never_applied_and_events_still_route() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let (sim, handle, task_a) = serving_web_on(&a).await;
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
        // Routed from the events: no read has succeeded since the fault.
        routed_to(&handle, backend).await;
        guarded("a failed read", handle.wait_refreshes(refreshes + 1)).await;
        assert!(
            handle.read_status().error.is_some(),
            "{fault:?}: the failure is exposed"
        );
        let still = get(&c, &url, HOST).await.1;
        assert_eq!(
            still, backend.name,
            "{fault:?}: the broken document was not applied"
        );
    }
    // Fixed: the reads confirm what the events said.
    sim.set_apps_fault(AppsFault::None);
    let refreshes = handle.refreshes();
    guarded("a good read", handle.wait_refreshes(refreshes + 1)).await;
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
    let report = serde_json::to_string(&switchyard::routing::report::RoutesReport::new(
        &handle.table.load(),
    ))
    .unwrap();
    assert!(
        report.contains("/broken"),
        "the bad app is reported: {report}"
    );
    handle.shutdown().await;
    sim.shutdown().await;
}

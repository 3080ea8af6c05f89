//! Marathon unavailable or misbehaving: a start with every Marathon down (E12), an election (E2),
//! and garbage and a slow drip on the event stream (E11).

use super::*;

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
    let handle = start(source(sim.urls(), Credentials::None)).await;
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
    let connects = metric(&before, "switchyard_marathon_stream_connects_total");
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
        metric(&after, "switchyard_marathon_stream_connects_total"),
        connects,
        "the drip did not cost the stream"
    );
    assert_eq!(get(&c, &url, HOST).await.1, "b");
    handle.shutdown().await;
    sim.shutdown().await;
}

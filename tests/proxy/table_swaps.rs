//! Table swaps under traffic: a thousand swaps fail no request, a removed or drained endpoint
//! finishes its requests and gets no new ones, and a broken apps file keeps the last good table
//! serving.

use crate::support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;
use support::proxy::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_swaps_under_load_fail_no_request() {
    let backends = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    ];
    let ports: Vec<u16> = backends.iter().map(Backend::port).collect();
    let sets: [&[u16]; 4] = [&ports[0..1], &ports[1..3], &ports[0..3], &ports[2..3]];
    let apps = |i: usize| {
        json!([app(
            "/moving",
            10999,
            json!({"HAPROXY_0_VHOST": "move.example.com"}),
            sets[i % sets.len()]
        )])
    };
    let proxy = Arc::new(Proxy::start(apps(0)).await);

    let running = Arc::new(AtomicBool::new(true));
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    // Two keep-alive clients and one that opens a new connection per request.
    for fresh in [false, false, true] {
        let (proxy, running, ok, failed) =
            (proxy.clone(), running.clone(), ok.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            let http = if fresh { fresh_client() } else { client() };
            while running.load(Ordering::SeqCst) {
                let r = http
                    .get(proxy.url("/"))
                    .header("host", "move.example.com")
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::SeqCst),
                    Ok(r) => {
                        eprintln!("failed request: {}", r.status());
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                    Err(e) => {
                        eprintln!("failed request: {e}");
                        failed.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
        }));
    }
    for i in 1..=1000 {
        proxy.set_apps(apps(i)).await;
    }
    running.store(false, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    eprintln!(
        "requests during swaps: {} ok, {} failed",
        ok.load(Ordering::SeqCst),
        failed.load(Ordering::SeqCst)
    );
    assert_eq!(proxy.handle.generation(), 1001);
    assert_eq!(failed.load(Ordering::SeqCst), 0);
    assert!(
        ok.load(Ordering::SeqCst) > 100,
        "traffic flowed during the swaps: {}",
        ok.load(Ordering::SeqCst)
    );
    for b in &backends {
        assert!(b.hits() > 0, "backend {} got traffic", b.name);
    }
}

#[tokio::test]
async fn a_removed_endpoint_finishes_its_request_and_gets_no_new_ones() {
    let slow = Backend::start_with("slow", true).await;
    let fast = Backend::start("fast").await;
    let proxy = Proxy::start(json!([app(
        "/app",
        10998,
        json!({"HAPROXY_0_VHOST": "x.example.com"}),
        &[slow.port()]
    )]))
    .await;

    let in_flight = {
        let url = proxy.url("/");
        tokio::spawn(async move { get(&client(), &url, "x.example.com").await })
    };
    // Wait until the slow backend holds the request.
    while slow.hits() == 0 {
        tokio::task::yield_now().await;
    }
    proxy
        .set_apps(json!([app(
            "/app",
            10998,
            json!({"HAPROXY_0_VHOST": "x.example.com"}),
            &[fast.port()]
        )]))
        .await;
    let c = client();
    for _ in 0..10 {
        assert_eq!(get(&c, &proxy.url("/"), "x.example.com").await.1, "fast");
    }
    assert_eq!(
        slow.hits(),
        1,
        "no new request reached the removed endpoint"
    );
    slow.release(1);
    let (status, backend, _) = in_flight.await.unwrap();
    assert_eq!(
        (status, backend.as_str()),
        (200, "slow"),
        "the in-flight request completed"
    );
}

#[tokio::test]
async fn drained_endpoints_of_a_deployment_get_no_new_requests() {
    let (old, new) = (Backend::start("old").await, Backend::start("new").await);
    let group = |id: &str, started: &str, port: u16, extra: serde_json::Value| {
        let mut labels = json!({"HAPROXY_0_VHOST": "zdd.example.com", "HAPROXY_DEPLOYMENT_GROUP": "zdd", "HAPROXY_DEPLOYMENT_STARTED_AT": started});
        labels
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let mut a = app(id, 10997, labels, &[port]);
        a["instances"] = json!(1);
        a
    };
    let proxy = Proxy::start(json!([
        group("/zdd-blue", "2021-01-01T00:00:00Z", old.port(), json!({})),
        group("/zdd-green", "2021-01-02T00:00:00Z", new.port(), json!({})),
    ]))
    .await;
    let c = client();
    for _ in 0..6 {
        assert_eq!(get(&c, &proxy.url("/"), "zdd.example.com").await.1, "new");
    }
    assert_eq!(old.hits(), 0);
}

#[tokio::test]
async fn a_broken_apps_file_keeps_the_last_good_table_serving() {
    let web = Backend::start("web").await;
    let proxy = Proxy::start(json!([app(
        "/web",
        free_port(),
        json!({"HAPROXY_0_VHOST": "k.example.com"}),
        &[web.port()]
    )]))
    .await;
    for garbage in [&b"{\"apps\": ["[..], b"<html>502 Bad Gateway</html>", b""] {
        let read = proxy.handle.refreshes() + 1;
        std::fs::write(&proxy.apps_file, garbage).unwrap();
        proxy.handle.reload();
        proxy.handle.wait_refreshes(read).await;
        assert_eq!(proxy.handle.generation(), 1, "no table was built from it");
        assert_eq!(
            get(&client(), &proxy.url("/"), "k.example.com").await.1,
            "web"
        );
    }
    std::fs::remove_file(&proxy.apps_file).unwrap();
    let read = proxy.handle.refreshes() + 1;
    proxy.handle.reload();
    proxy.handle.wait_refreshes(read).await;
    assert_eq!(
        get(&client(), &proxy.url("/"), "k.example.com").await.1,
        "web",
        "a missing file too"
    );
}

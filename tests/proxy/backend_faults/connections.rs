//! Faults around connections: a blackholed endpoint ejected, a slow streaming app that does not
//! slow another, and the keep-alive race (a reused connection the backend closes).

use super::*;

/// D3: an endpoint that accepts but never answers is ejected after a few failures in a row
/// (counted in `switchyard_endpoint_ejections_total`, shown down in `/stats`); with two healthy
/// endpoints beside it, no request fails after that.
#[tokio::test]
async fn d3_a_blackholed_endpoint_is_ejected_and_then_costs_no_errors() {
    let silent = RawBackend::start(|_| Reply::Silent).await;
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let config = ProxyConfig {
        server_timeout: Duration::from_millis(200),
        ..ProxyConfig::default()
    };
    let proxy = proxy_to("d3.example.com", &[silent.port, a.port(), b.port()], config).await;
    let c = client();
    let mut errors_before = 0;
    let mut requests = 0;
    while metric(
        &proxy.admin_text("/metrics").await,
        "switchyard_endpoint_ejections_total",
    ) < 1.0
    {
        let (status, _) = fetch(&c, &proxy, "d3.example.com", "/").await;
        requests += 1;
        if status != 200 {
            assert_eq!(status, 504, "a silent endpoint times out");
            errors_before += 1;
        }
        assert!(requests < 50, "never ejected after {requests} requests");
    }
    assert_eq!(errors_before, 3, "ejected after three failures in a row");
    let stats: serde_json::Value = serde_json::from_str(&proxy.admin_text("/stats").await).unwrap();
    let silent_addr = format!("127.0.0.1:{}", silent.port);
    let endpoint = stats["backends"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["addr"] == silent_addr.as_str())
        .unwrap()
        .clone();
    assert_eq!(endpoint["down"], true, "{endpoint}");
    let reached = silent.seen().len();
    let mut served = Vec::new();
    for _ in 0..20 {
        let (status, body) = fetch(&c, &proxy, "d3.example.com", "/").await;
        assert_eq!(status, 200, "an error after the ejection: {body:?}");
        served.push(status);
    }
    assert_eq!(
        silent.seen().len(),
        reached,
        "no request reached it after the ejection"
    );
    assert!(
        a.hits() > 0 && b.hits() > 0,
        "both healthy endpoints share the load"
    );
}

/// D5: one app whose backend streams slowly never holds up another app: while its response is
/// still streaming, fifty requests to the other app complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d5_a_slow_streaming_app_does_not_slow_another_app() {
    // The slow backend sends its body in steps, each only when the test allows it.
    let step = Arc::new(tokio::sync::Semaphore::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_port = listener.local_addr().unwrap().port();
    let gate = step.clone();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n")
            .await
            .unwrap();
        for _ in 0..3 {
            gate.acquire().await.unwrap().forget();
            s.write_all(b"0123456789").await.unwrap();
        }
        let _ = s.read(&mut buf).await;
    });
    let fast = Backend::start("fast").await;
    let proxy = Proxy::start(json!([
        app(
            "/slow",
            free_port(),
            json!({"HAPROXY_0_VHOST": "slow.example.com"}),
            &[slow_port]
        ),
        app(
            "/fast",
            free_port(),
            json!({"HAPROXY_0_VHOST": "fast.example.com"}),
            &[fast.port()]
        ),
    ]))
    .await;
    let mut slow = client()
        .get(proxy.url("/"))
        .header("host", "slow.example.com")
        .send()
        .await
        .unwrap();
    step.add_permits(1);
    let first = guarded("the first slow chunk", slow.chunk())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"0123456789");

    // The slow response is mid-stream (its backend waits for the next permit).
    let mut others = Vec::new();
    for _ in 0..50 {
        let url = proxy.url("/");
        others.push(tokio::spawn(async move {
            get(&fresh_client(), &url, "fast.example.com").await
        }));
    }
    for other in others {
        let (status, backend, _) = guarded("the fast app", other).await.unwrap();
        assert_eq!((status, backend.as_str()), (200, "fast"));
    }
    assert_eq!(
        step.available_permits(),
        0,
        "the slow stream was still going"
    );
    step.add_permits(2);
    let mut rest = Vec::new();
    while let Some(chunk) = guarded("the slow body", slow.chunk()).await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(
        rest, b"01234567890123456789",
        "the slow body completes intact"
    );
}

/// The keep-alive race, made certain: the backend answers the first request on a connection
/// and closes it when the second arrives, without answering (its close crossed our request).
/// A bodiless request is sent once more on a fresh connection: no client sees a 502.
#[tokio::test]
async fn a_reused_connection_closed_by_the_backend_is_retried_on_a_fresh_one() {
    let backend = RawBackend::start(|seen| match seen.index_on_connection {
        0 => Reply::Send(good(seen)),
        _ => Reply::Close,
    })
    .await;
    let proxy = proxy_to("race.example.com", &[backend.port], ProxyConfig::default()).await;
    let c = client();
    for _ in 0..20 {
        let (status, body) = fetch(&c, &proxy, "race.example.com", "/").await;
        assert_eq!(status, 200, "{body:?}");
    }
    for method in [
        reqwest::Method::HEAD,
        reqwest::Method::DELETE,
        reqwest::Method::POST,
    ] {
        let response = c
            .request(method.clone(), proxy.url("/"))
            .header("host", "race.example.com")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{method} without a body");
    }
    let dropped = backend
        .seen()
        .iter()
        .filter(|s| s.index_on_connection > 0)
        .count();
    assert!(
        dropped > 0,
        "the race was exercised: a reused connection was closed on a request"
    );
}

/// The ordinary shape of the race: the backend closes every connection right after each
/// response, without `Connection: close`. Back-to-back requests never see a 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_closing_every_keep_alive_connection_causes_no_errors() {
    let backend = RawBackend::start(|seen| Reply::SendAndClose(good(seen))).await;
    let proxy = proxy_to("close.example.com", &[backend.port], ProxyConfig::default()).await;
    let c = client();
    let mut failed = 0;
    for _ in 0..200 {
        let (status, _) = fetch(&c, &proxy, "close.example.com", "/").await;
        if status != 200 {
            failed += 1;
        }
    }
    assert_eq!(failed, 0, "requests failed by the keep-alive race");
    assert!(
        backend.connections() >= 200,
        "each response closed its connection"
    );
}

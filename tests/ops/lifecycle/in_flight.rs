//! Requests in flight finish: at SIGTERM (C3), on an idle keep-alive connection closed after its
//! next response (C5), and on a route removed from the table (C6).

use super::*;

/// C3: SIGTERM with twenty slow requests in flight: the listener closes, every request still
/// completes, and the process exits 0 without waiting for the drain timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c3_sigterm_lets_every_in_flight_request_finish_then_exits_zero() {
    const N: usize = 20;
    let slow = Backend::start_with("slow", true).await;
    let drain = Duration::from_secs(10);
    let mut running = start(
        json!([app(
            "/slow",
            free_port(),
            json!({"HAPROXY_0_VHOST": "slow.example.com"}),
            &[slow.port()]
        )]),
        drain,
    )
    .await;
    let url = format!("http://{}/", running.http);
    let mut in_flight = Vec::new();
    for _ in 0..N {
        let url = url.clone();
        // One connection each.
        in_flight.push(tokio::spawn(async move {
            get(&fresh_client(), &url, "slow.example.com").await
        }));
    }
    guarded("every request at the backend", async {
        while slow.hits() < N {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let signalled = Instant::now();
    sigterm(&running.child);
    wait_refused(running.http).await;
    slow.release(N);
    for request in in_flight {
        let (status, backend, _) = guarded("an in-flight request", request).await.unwrap();
        assert_eq!((status, backend.as_str()), (200, "slow"));
    }
    let status = guarded("the exit", running.child.wait()).await.unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        signalled.elapsed() < drain,
        "exited once the requests were done, not at the drain timeout"
    );
}

/// One HTTP/1.1 keep-alive connection to `addr`: its sender and a watch on its end.
async fn keep_alive_connection(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http1::SendRequest<http_body_util::Empty<Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let ended = tokio::spawn(async move {
        let _ = connection.await;
    });
    (sender, ended)
}

fn request_to(host: &str) -> hyper::Request<http_body_util::Empty<Bytes>> {
    hyper::Request::get("/")
        .header("host", host)
        .body(http_body_util::Empty::new())
        .unwrap()
}

/// C5: keep-alive connections idle at SIGTERM are not closed under the client (the race that
/// costs HAProxy reloads read errors). One that sends its next request during the drain gets
/// its answer with `Connection: close`, and then the close; one that stays quiet is closed
/// after the one-second drain grace (not the ten-second idle timeout), and the process exits
/// then, well before the drain timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c5_idle_keep_alive_connections_are_closed_after_their_next_response_not_under_it() {
    let backend = Backend::start("a").await;
    let drain = Duration::from_secs(10);
    let mut running = start_with(
        json!([app(
            "/a",
            free_port(),
            json!({"HAPROXY_0_VHOST": "a.example.com"}),
            &[backend.port()]
        )]),
        drain,
        &["--header-timeout", "10"],
    )
    .await;
    let (mut talker, talker_ended) = keep_alive_connection(running.http).await;
    let (mut quiet, quiet_ended) = keep_alive_connection(running.http).await;
    for sender in [&mut talker, &mut quiet] {
        let response = sender
            .send_request(request_to("a.example.com"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("connection").is_none(), "kept alive");
        http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
    }

    let signalled = Instant::now();
    sigterm(&running.child);
    wait_refused(running.http).await;
    let response = guarded(
        "the answer on an idle keep-alive connection",
        talker.send_request(request_to("a.example.com")),
    )
    .await
    .expect("the idle keep-alive connection was still open");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..]),
        "a drained connection says it closes"
    );
    http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap();
    guarded("the close after the response", talker_ended)
        .await
        .unwrap();
    guarded("the quiet connection's idle close", quiet_ended)
        .await
        .unwrap();
    let status = guarded("the exit", running.child.wait()).await.unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "exited after {:?}: a quiet connection waited for the idle or drain timeout",
        signalled.elapsed()
    );
}

/// C6: an app removed while requests to it are in flight: they complete; new requests to its
/// host get a clean 503, and the other app is untouched.
#[tokio::test]
async fn c6_a_removed_route_finishes_its_requests_and_then_answers_503() {
    const N: usize = 5;
    let doomed = Backend::start_with("doomed", true).await;
    let stays = Backend::start("stays").await;
    let stays_app = app(
        "/stays",
        free_port(),
        json!({"HAPROXY_0_VHOST": "stays.example.com"}),
        &[stays.port()],
    );
    let proxy = Proxy::start(json!([
        stays_app.clone(),
        app(
            "/doomed",
            free_port(),
            json!({"HAPROXY_0_VHOST": "doomed.example.com"}),
            &[doomed.port()]
        ),
    ]))
    .await;
    let mut in_flight = Vec::new();
    for _ in 0..N {
        let url = proxy.url("/");
        in_flight.push(tokio::spawn(async move {
            get(&fresh_client(), &url, "doomed.example.com").await
        }));
    }
    guarded("every request at the backend", async {
        while doomed.hits() < N {
            tokio::task::yield_now().await;
        }
    })
    .await;
    proxy.set_apps(json!([stays_app])).await;

    let c = client();
    for _ in 0..5 {
        let response = c
            .get(proxy.url("/"))
            .header("host", "doomed.example.com")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(response.text().await.unwrap(), "503 Service Unavailable\n");
        assert_eq!(
            get(&c, &proxy.url("/"), "stays.example.com").await.1,
            "stays"
        );
    }
    assert_eq!(doomed.hits(), N, "nothing new reached the removed app");
    doomed.release(N);
    for request in in_flight {
        let (status, backend, _) = guarded("an in-flight request", request).await.unwrap();
        assert_eq!((status, backend.as_str()), (200, "doomed"));
    }
}

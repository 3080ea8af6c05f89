//! Lifecycle (reliability matrix C2, C3, C4, C5, C6): a binary upgrade under load, SIGTERM with
//! requests in flight, idle keep-alive, upgraded and streaming connections during the drain (the
//! real binary, since signals are involved), and a route removed while requests to it are in
//! flight.

use crate::support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use support::proxy::*;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
/// Guards against a hang; never a synchronisation point.
const GUARD: Duration = Duration::from_secs(15);

async fn guarded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(GUARD, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

struct Running {
    child: Child,
    http: SocketAddr,
    _dir: tempfile::TempDir,
}

/// The binary serving `apps` from a file, with `--drain-timeout drain`.
async fn start(apps: Value, drain: Duration) -> Running {
    start_with(apps, drain, &[]).await
}

/// [`start`] with more flags.
async fn start_with(apps: Value, drain: Duration, flags: &[&str]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let apps_file = dir.path().join("apps.json");
    std::fs::write(&apps_file, json!({ "apps": apps }).to_string()).unwrap();
    let (http, app_id, admin) = (free_port(), free_port(), free_port());
    let child = Command::new(BIN)
        .args(["--apps-file", apps_file.to_str().unwrap()])
        .args(["--bind-address", "127.0.0.1", "--https-port", "0"])
        .args(["--http-port", &http.to_string()])
        .args(["--app-id-port", &app_id.to_string()])
        .args(["--admin-port", &admin.to_string()])
        .args(["--drain-timeout", &drain.as_secs_f64().to_string()])
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Served once the admin port reports a first table.
    let http_client = reqwest::Client::builder().no_proxy().build().unwrap();
    guarded("the first table", async {
        loop {
            let url = format!("http://127.0.0.1:{admin}/generation");
            if let Ok(r) = http_client.get(&url).send().await {
                if r.text().await.is_ok_and(|t| t.trim() == "1") {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    Running {
        child,
        http: ([127, 0, 0, 1], http).into(),
        _dir: dir,
    }
}

fn sigterm(child: &Child) {
    sigterm_pid(child.id().unwrap());
}

/// Polls until a new connection to `addr` is refused (the listener closed).
async fn wait_refused(addr: SocketAddr) {
    guarded("the listener to close", async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

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

/// A process this test did not start (the upgrade's successor), killed if the test ends early.
struct Adopted(u32);

impl Adopted {
    fn gone(&self) -> bool {
        // Gone, or a zombie its new parent has not reaped yet.
        std::fs::read_to_string(format!("/proc/{}/stat", self.0))
            .map(|stat| {
                stat.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true)
    }
}

impl Drop for Adopted {
    fn drop(&mut self) {
        if !self.gone() {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}

/// C2: SIGUSR2 under load from keep-alive and new-connection clients: the old process starts
/// the binary again with its listening sockets, the new one serves, the old one drains and
/// exits 0, and no request fails or is refused at any point; the new process serves alone after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_a_binary_upgrade_under_load_fails_no_request() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let backend = Backend::start("a").await;
    let mut running = start(
        json!([app(
            "/a",
            free_port(),
            json!({"HAPROXY_0_VHOST": "a.example.com"}),
            &[backend.port()]
        )]),
        Duration::from_secs(10),
    )
    .await;
    let url = format!("http://{}/", running.http);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for keep_alive in [true, true, false, false] {
        let (stop, ok, failures, url) = (stop.clone(), ok.clone(), failures.clone(), url.clone());
        workers.push(tokio::spawn(async move {
            let pooled = client();
            while !stop.load(Ordering::Relaxed) {
                let client = if keep_alive {
                    pooled.clone()
                } else {
                    fresh_client()
                };
                let sent = client
                    .get(&url)
                    .header("host", "a.example.com")
                    .send()
                    .await;
                let outcome = match sent {
                    Ok(r) if r.status() == 200 => {
                        r.bytes().await.map(drop).map_err(|e| format!("{e:?}"))
                    }
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(format!("{e:?}")),
                };
                match outcome {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(failure) => failures.lock().unwrap().push(failure),
                }
            }
        }));
    }
    let served = |n: usize| {
        let ok = ok.clone();
        async move {
            while ok.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    guarded("load before the upgrade", served(200)).await;

    let old = running.child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-USR2", &old.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let successor = guarded("the new process", async {
        loop {
            let children =
                std::fs::read_to_string(format!("/proc/{old}/task/{old}/children")).unwrap();
            if let Some(pid) = children.split_whitespace().next() {
                return Adopted(pid.parse().unwrap());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let exited = guarded("the old process to exit", running.child.wait())
        .await
        .unwrap();
    assert!(exited.success(), "old process: {exited:?}");
    // The new process alone serves on: the same ports, more requests.
    let after = ok.load(Ordering::Relaxed);
    guarded("load after the upgrade", served(after + 200)).await;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    println!(
        "upgrade under load: {} requests ok, {} failed",
        ok.load(Ordering::Relaxed),
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(!successor.gone(), "the new process serves");

    sigterm_pid(successor.0);
    guarded("the new process to exit", async {
        while !successor.gone() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

fn sigterm_pid(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A WebSocket echo server; returns its port.
async fn websocket_echo() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut socket) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                while let Some(Ok(message)) = socket.next().await {
                    if message.is_text() && socket.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// C4, upgraded connections: a WebSocket open at SIGTERM keeps working during the drain, is
/// closed at the drain deadline, and the process exits then, not later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c4_a_websocket_works_during_the_drain_and_is_closed_at_its_deadline() {
    let ws_port = websocket_echo().await;
    let drain = Duration::from_secs(2);
    let mut running = start(
        json!([app(
            "/ws",
            free_port(),
            json!({"HAPROXY_0_VHOST": "ws.example.com"}),
            &[ws_port]
        )]),
        drain,
    )
    .await;
    let stream = tokio::net::TcpStream::connect(running.http).await.unwrap();
    let request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        "ws://ws.example.com/chat",
    )
    .unwrap();
    let (mut socket, response) = tokio_tungstenite::client_async(request, stream)
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    socket.send(Message::Text("before".into())).await.unwrap();
    assert_eq!(
        socket.next().await.unwrap().unwrap(),
        Message::Text("before".into())
    );

    let signalled = Instant::now();
    sigterm(&running.child);
    wait_refused(running.http).await;
    socket.send(Message::Text("during".into())).await.unwrap();
    let echoed = guarded("an echo during the drain", socket.next()).await;
    assert_eq!(
        echoed.unwrap().unwrap(),
        Message::Text("during".into()),
        "the tunnel lives on during the drain"
    );

    // Then the deadline ends it: the socket closes and the process exits.
    let ended = guarded("the tunnel to close", async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    });
    ended.await;
    let status = guarded("the exit", running.child.wait()).await.unwrap();
    let lived = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        lived >= drain,
        "cut after {lived:?}, before the drain deadline"
    );
    assert!(
        lived < drain + Duration::from_secs(2),
        "lingered {lived:?} past a {drain:?} drain"
    );
}

/// C4, streaming responses: a never-ending event stream open at SIGTERM keeps delivering
/// during the drain, is cut at the deadline (the client sees a broken body, not an end), and
/// the process exits then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c4_a_streaming_response_is_cut_at_the_drain_deadline() {
    // An SSE-style backend: events when the test sends them, never an end.
    let (events_tx, events_rx) = mpsc::unbounded_channel::<&'static str>();
    let events_rx = std::sync::Arc::new(tokio::sync::Mutex::new(Some(events_rx)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sse_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let events_rx = events_rx.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req| {
                    let events_rx = events_rx.clone();
                    async move {
                        let rx = events_rx.lock().await.take().expect("one stream");
                        let frames = tokio_stream_of(rx);
                        let response = hyper::Response::builder()
                            .header("content-type", "text/event-stream")
                            .body(StreamBody::new(frames))
                            .unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), service)
                    .await;
            });
        }
    });
    let drain = Duration::from_secs(2);
    let mut running = start(
        json!([app(
            "/sse",
            free_port(),
            json!({"HAPROXY_0_VHOST": "sse.example.com"}),
            &[sse_port]
        )]),
        drain,
    )
    .await;
    let mut stream = client()
        .get(format!("http://{}/events", running.http))
        .header("host", "sse.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    events_tx.send("data: one\n\n").unwrap();
    let first = guarded("the first event", stream.chunk())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"data: one\n\n");

    let signalled = Instant::now();
    sigterm(&running.child);
    wait_refused(running.http).await;
    events_tx.send("data: two\n\n").unwrap();
    let second = guarded("an event during the drain", stream.chunk())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &second[..],
        b"data: two\n\n",
        "the stream lives on during the drain"
    );

    let end = guarded("the stream to be cut", stream.chunk()).await;
    assert!(end.is_err(), "cut, not ended cleanly: {end:?}");
    let status = guarded("the exit", running.child.wait()).await.unwrap();
    let lived = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        lived >= drain,
        "cut after {lived:?}, before the drain deadline"
    );
    assert!(
        lived < drain + Duration::from_secs(2),
        "lingered {lived:?} past a {drain:?} drain"
    );
}

/// The receiver as a body stream of data frames.
fn tokio_stream_of(
    rx: mpsc::UnboundedReceiver<&'static str>,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        Some((Ok(Frame::data(Bytes::from_static(event.as_bytes()))), rx))
    })
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

//! The security review's findings, each over real sockets and on both HTTP/1 paths (the native
//! one and hyper's, `--hyper-http1`): a raw backend sends exactly the bytes described, a raw
//! client reads exactly what reaches it.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use support::metric;
use support::raw::*;
use switchyard::proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Both HTTP/1 paths: the native one (default) and hyper's.
fn both_paths() -> [(&'static str, ProxyConfig); 2] {
    let hyper = ProxyConfig {
        native_http1: false,
        ..ProxyConfig::default()
    };
    [("native", ProxyConfig::default()), ("hyper", hyper)]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_flood_of_interim_responses_is_a_502_and_a_few_are_skipped() {
    for (path, config) in both_paths() {
        let flood = [
            "HTTP/1.1 100 Continue\r\n\r\n".repeat(10_000).into_bytes(),
            ok("late"),
        ]
        .concat();
        let upstream = RawUpstream::start(move |_, _, _| Reply::Send(flood.clone())).await;
        let mut session = Session::with(upstream.port, config.clone()).await;
        assert_eq!(session.send(GET).await.status(), 502, "{path}");

        let few = [
            "HTTP/1.1 102 Processing\r\n\r\n".repeat(3).into_bytes(),
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n".to_vec(),
            ok("done"),
        ]
        .concat();
        let upstream = RawUpstream::start(move |_, _, _| Reply::Send(few.clone())).await;
        let mut session = Session::with(upstream.port, config).await;
        let answer = session.send(GET).await;
        assert_eq!(
            (answer.status(), &answer.body[..]),
            (200, &b"done"[..]),
            "{path}"
        );
    }
}

#[tokio::test]
async fn an_h2c_upgrade_is_never_forwarded() {
    for (path, config) in both_paths() {
        // A backend that would switch to HTTP/2 when asked.
        let upstream = RawUpstream::start(|_, _, head| {
            if head.to_ascii_lowercase().contains("upgrade: h2c") {
                Reply::Send(
                    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                        .to_vec(),
                )
            } else {
                Reply::Send(ok("plain"))
            }
        })
        .await;
        let mut session = Session::with(upstream.port, config).await;
        let answer = session
            .send(
                "GET / HTTP/1.1\r\nHost: raw.test\r\nConnection: Upgrade, HTTP2-Settings\r\n\
                 Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
            )
            .await;
        assert_eq!(
            (answer.status(), &answer.body[..]),
            (200, &b"plain"[..]),
            "{path}"
        );
        let head = upstream.heads()[0].to_ascii_lowercase();
        assert!(
            !head.contains("upgrade") && !head.contains("http2-settings"),
            "{path}: {head}"
        );
    }
}

#[tokio::test]
async fn a_content_length_named_by_connection_still_frames_the_response() {
    for (path, config) in both_paths() {
        let upstream = RawUpstream::start(|_, _, _| {
            Reply::Send(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: content-length\r\n\r\nhello"
                    .to_vec(),
            )
        })
        .await;
        let mut session = Session::with(upstream.port, config).await;
        // Pipelined: the second response must not run into the first.
        session.write(&GET.repeat(2)).await;
        for _ in 0..2 {
            let answer = session.answer().await;
            assert_eq!(answer.status(), 200, "{path}");
            assert_eq!(answer.body, b"hello", "{path}: {}", answer.head);
        }
    }
}

#[tokio::test]
async fn loose_chunking_never_reaches_the_client_as_sent() {
    let cases: [(&[u8], &[u8]); 2] = [
        (b"5 5\r\nhello\r\n0\r\n\r\n", b"5 5\r\n"),
        (
            b"5\r\nhello\r\n0\r\nx-t: 1\nx-smuggled: 1\r\n\r\n",
            b"1\nx-smuggled",
        ),
    ];
    for (path, config) in both_paths() {
        for (body, loose) in cases {
            let response = [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                body,
            ]
            .concat();
            let upstream = RawUpstream::start(move |_, _, _| Reply::Send(response.clone())).await;
            let mut session = Session::with(upstream.port, config.clone()).await;
            session
                .write("GET / HTTP/1.1\r\nHost: raw.test\r\nConnection: close\r\n\r\n")
                .await;
            let received = session.read_to_end().await;
            assert!(
                !contains(&received, loose),
                "{path}: {}",
                String::from_utf8_lossy(&received)
            );
        }
    }
}

/// A backend that answers each request, and on a signal writes a whole extra response on its
/// first connection while that connection sits idle in the proxy's pool.
struct LateBackend {
    port: u16,
    connections: Arc<AtomicUsize>,
    send_stray: Arc<Notify>,
    stray_sent: Arc<Notify>,
    first_closed: Arc<Notify>,
}

impl LateBackend {
    async fn start() -> LateBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend = LateBackend {
            port: listener.local_addr().unwrap().port(),
            connections: Arc::default(),
            send_stray: Arc::default(),
            stray_sent: Arc::default(),
            first_closed: Arc::default(),
        };
        let (count, send, sent, closed) = (
            backend.connections.clone(),
            backend.send_stray.clone(),
            backend.stray_sent.clone(),
            backend.first_closed.clone(),
        );
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let (send, sent, closed) = (send.clone(), sent.clone(), closed.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    while let Some(end) = read_head(&mut stream, &mut buf).await {
                        let path = path_of(&String::from_utf8_lossy(&buf[..end])).to_owned();
                        buf.drain(..end);
                        stream.write_all(&ok(&path)).await.unwrap();
                        if n == 0 {
                            send.notified().await;
                            let stray = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstray!";
                            stream.write_all(stray).await.unwrap();
                            sent.notify_one();
                            // Until the proxy closes it.
                            let mut rest = [0u8; 64];
                            while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
                            closed.notify_one();
                            return;
                        }
                    }
                });
            }
        });
        backend
    }
}

#[tokio::test]
async fn bytes_a_backend_sends_while_its_connection_is_idle_drop_that_connection() {
    for (path, config) in both_paths() {
        let backend = LateBackend::start().await;
        let mut session = Session::with(backend.port, config).await;
        let first = session
            .send("GET /one HTTP/1.1\r\nHost: raw.test\r\n\r\n")
            .await;
        assert_eq!(first.body, b"/one", "{path}");
        backend.send_stray.notify_one();
        backend.stray_sent.notified().await;
        if path == "hyper" {
            // hyper's client reads an idle connection and closes it on bytes nobody asked
            // for; the native path finds them when it next takes the connection (on
            // loopback, a write is in the peer's receive queue when it returns).
            backend.first_closed.notified().await;
        }
        let second = session
            .send("GET /two HTTP/1.1\r\nHost: raw.test\r\n\r\n")
            .await;
        assert_eq!(second.body, b"/two", "{path}: never the stray response");
        assert_eq!(backend.connections.load(Ordering::SeqCst), 2, "{path}");
        let text = session.proxy.admin_text("/metrics").await;
        assert_eq!(
            metric(&text, "switchyard_upstream_idle_discarded_total"),
            1.0,
            "{path}"
        );
    }
}

#[tokio::test]
async fn forwarding_headers_a_client_made_up_never_reach_the_backend() {
    for (path, config) in both_paths() {
        let upstream = RawUpstream::start(|_, _, _| Reply::Send(ok("seen"))).await;
        let mut session = Session::with(upstream.port, config).await;
        let answer = session
            .send(
                "GET / HTTP/1.1\r\nHost: raw.test\r\nX-Forwarded-For: 6.6.6.6\r\n\
                 X-Real-IP: 6.6.6.6\r\nForwarded: for=6.6.6.6;proto=https\r\n\
                 X-Forwarded-Host: admin.internal\r\nX-Client-IP: 6.6.6.6\r\n\
                 X_Forwarded_For: 6.6.6.6\r\nX_Forwarded_Proto: https\r\nX-Kept: 1\r\n\r\n",
            )
            .await;
        assert_eq!(answer.status(), 200, "{path}");
        let head = upstream.heads()[0].to_ascii_lowercase();
        let lines: Vec<&str> = head.split("\r\n").collect();
        for expected in [
            "x-forwarded-for: 6.6.6.6, 127.0.0.1",
            "x-real-ip: 127.0.0.1",
            "x-forwarded-proto: http",
            "x-kept: 1",
        ] {
            assert!(lines.contains(&expected), "{path}: {expected} in {head}");
        }
        for gone in [
            "forwarded:",
            "x-forwarded-host:",
            "x-client-ip:",
            "x_forwarded",
        ] {
            assert!(
                !head.contains(&format!("\n{gone}")),
                "{path}: {gone} in {head}"
            );
        }
        assert_eq!(head.matches("x-real-ip").count(), 1, "{path}: {head}");
    }
}

#[tokio::test]
async fn failed_logins_are_limited_per_address_whether_or_not_the_user_exists() {
    use serde_json::json;
    use support::proxy::{app, client, free_port, Backend, Proxy};
    let web = Backend::start("web").await;
    // MD5-crypt of "s3cret": a cheap hash keeps the test quick, the limit is the same.
    let hash = "$1$saltsalt$RwMqRjSWhXMKbW72DwzGd1";
    let labels = |host: &str| json!({"HAPROXY_0_VHOST": host, "HAPROXY_0_AUTH": format!("shop:admin:{hash}")});
    let proxy = Proxy::start(json!([
        app("/a", free_port(), labels("a.example.com"), &[web.port()]),
        app("/b", free_port(), labels("b.example.com"), &[web.port()]),
    ]))
    .await;
    let c = client();
    let attempt = |host: &'static str, user: &'static str, password: &'static str| {
        let request = c
            .get(proxy.url("/"))
            .header("host", host)
            .basic_auth(user, Some(password));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(attempt("a.example.com", "admin", "s3cret").await, 200);
    // An unknown user costs a check as a wrong password does: both spend the budget.
    for host in ["a.example.com", "b.example.com"] {
        for user in ["nobody", "admin"] {
            let mut statuses = Vec::new();
            for _ in 0..40 {
                statuses.push(attempt(host, user, "wrong").await);
            }
            let first_429 = statuses.iter().position(|&s| s == 429);
            assert!(
                first_429.is_some_and(|i| statuses[..i].iter().all(|&s| s == 401)),
                "{host} {user}: {statuses:?}"
            );
        }
    }
    // Credentials that passed before are remembered and need no check.
    assert_eq!(attempt("a.example.com", "admin", "s3cret").await, 200);
    assert_eq!(web.hits(), 2);
}

#[tokio::test]
async fn the_admin_port_caps_connections_and_refuses_cross_site_signals() {
    let upstream = RawUpstream::start(|_, _, _| Reply::Send(ok("x"))).await;
    let session = Session::to(upstream.port).await;
    let admin = session.proxy.handle.admin_addr;
    let get =
        |path: &str, extra: &str| format!("GET {path} HTTP/1.1\r\nHost: {admin}\r\n{extra}\r\n");

    // Every connection the cap allows from one address, each known to be served...
    let mut held = Vec::new();
    for _ in 0..switchyard::admin::MAX_CONNECTIONS_PER_IP {
        let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
        stream
            .write_all(get("/healthz", "").as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        assert_eq!(
            read_answer(&mut stream, &mut buf, false).await.status(),
            200
        );
        held.push(stream);
    }
    // ...then one more is closed unanswered.
    let mut extra = tokio::net::TcpStream::connect(admin).await.unwrap();
    let _ = extra.write_all(get("/healthz", "").as_bytes()).await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        extra.read_to_end(&mut rest),
    );
    let _ = read.await.expect("closed within 10 s");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));

    // Signals: from a script, or the admin port's own page; never from another site's page.
    let own_origin = format!("Origin: http://{admin}\r\n");
    let cases = [
        ("", 200),
        (own_origin.as_str(), 200),
        ("Origin: https://evil.example\r\n", 403),
        ("Sec-Fetch-Site: cross-site\r\n", 403),
    ];
    let stream = &mut held[0];
    let mut buf = Vec::new();
    for (headers, expected) in cases {
        stream
            .write_all(get("/_mlb_signal/usr1", headers).as_bytes())
            .await
            .unwrap();
        let answer = read_answer(stream, &mut buf, false).await;
        assert_eq!(answer.status(), expected, "{headers:?}");
    }
}

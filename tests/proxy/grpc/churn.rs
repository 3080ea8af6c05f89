//! A backend's GOAWAY while calls flow: its task is being replaced, it stops gracefully, and no
//! call fails.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::json;
use tonic::Request;

use super::{through_proxy, HOST};
use crate::support::grpc::{self, GrpcBackend};
use crate::support::proxy::app;

const CALLS: usize = 1000;
const CONCURRENCY: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_going_away_during_a_thousand_calls_fails_none() {
    let mut old = GrpcBackend::start("old").await;
    let new = GrpcBackend::start("new").await;
    let (proxy, channel) = through_proxy(&[&old, &new], "h2").await;
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let third = Arc::new(tokio::sync::Notify::new());
    let mut callers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (channel, done, failures, third) = (
            channel.clone(),
            done.clone(),
            failures.clone(),
            third.clone(),
        );
        callers.push(tokio::spawn(async move {
            while done.fetch_add(1, Ordering::SeqCst) < CALLS {
                let request = Request::new(Bytes::from_static(b"call"));
                if let Err(status) = grpc::unary(&channel, request).await {
                    eprintln!("failed: {status:?}");
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                if done.load(Ordering::SeqCst) >= CALLS / 3 {
                    third.notify_one();
                }
            }
        }));
    }
    // A third of the way: the old task stops (GOAWAY, its calls in flight finish, its port
    // closes) while the table still names it; then the table drops it.
    third.notified().await;
    let calls_before = old.calls();
    old.stop_gracefully().await;
    proxy
        .set_apps(json!([app(
            "/grpc",
            10_500,
            grpc::labels(HOST, "h2"),
            &[new.port()]
        )]))
        .await;
    for caller in callers {
        caller.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::SeqCst), 0, "no call failed");
    assert!(
        calls_before > 0,
        "the old backend served calls before it went"
    );
    assert_eq!(old.calls() + new.calls(), CALLS, "each call once");
}

/// An HTTP/2 server that refuses its first stream with `REFUSED_STREAM` once it has read the
/// whole request body (RFC 9113 §8.7: not processed, safe to send again),
/// and echoes the body of every other. Returns its port and the bodies it refused.
async fn refusing_server() -> (u16, Arc<std::sync::Mutex<Vec<Bytes>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let refused = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = refused.clone();
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (seen, first) = (seen.clone(), first.clone());
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(stream).await else {
                    return;
                };
                while let Some(Ok((request, mut respond))) = conn.accept().await {
                    let refuse = first.swap(false, Ordering::SeqCst);
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        let mut body = request.into_body();
                        let mut whole = Vec::new();
                        while let Some(Ok(data)) = body.data().await {
                            let _ = body.flow_control().release_capacity(data.len());
                            whole.extend_from_slice(&data);
                        }
                        if refuse {
                            seen.lock().unwrap().push(Bytes::from(whole));
                            respond.send_reset(h2::Reason::REFUSED_STREAM);
                            return;
                        }
                        let response = http::Response::new(());
                        let mut send = respond.send_response(response, false).unwrap();
                        let _ = send.send_data(Bytes::from(whole), true);
                    });
                }
            });
        }
    });
    (port, refused)
}

#[tokio::test]
async fn a_stream_the_backend_refused_is_sent_again_with_its_body() {
    let (port, refused) = refusing_server().await;
    let labels = json!({"HAPROXY_0_VHOST": "refusing.test", "HAPROXY_0_BACKEND_PROTOCOL": "h2"});
    let proxy =
        crate::support::proxy::Proxy::start(json!([app("/refusing", 10_503, labels, &[port])]))
            .await;
    let body = "a body the backend read, then refused".repeat(100);
    let response = crate::support::proxy::client()
        .post(proxy.url("/upload"))
        .header("host", "refusing.test")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), body, "sent again whole");
    let refused = refused.lock().unwrap().clone();
    assert_eq!(
        refused,
        [Bytes::from(body)],
        "the first try was refused after its body"
    );
}

/// Accepts connections and never speaks HTTP/2 (as a task's listener that stopped accepting
/// behaves: the kernel completes the connection, nobody serves it). Once a stream's HEADERS
/// came on one of them, closes them all and the listener; returns the port and that moment.
async fn mute_listener() -> (u16, tokio::sync::oneshot::Receiver<()>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (closed, on_closed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut first, _) = listener.accept().await.unwrap();
        // The client preface, then frames (9-byte headers) up to the first HEADERS (type 1).
        let mut preface = [0u8; 24];
        first.read_exact(&mut preface).await.unwrap();
        loop {
            let mut head = [0u8; 9];
            first.read_exact(&mut head).await.unwrap();
            let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; length];
            first.read_exact(&mut payload).await.unwrap();
            if head[3] == 1 {
                break;
            }
        }
        drop((first, listener));
        let _ = closed.send(());
    });
    (port, on_closed)
}

#[tokio::test]
async fn a_call_on_a_connection_the_backend_never_spoke_on_goes_to_another_task() {
    let (mute, closed) = mute_listener().await;
    let good = GrpcBackend::start("good").await;
    let proxy = crate::support::proxy::Proxy::start(json!([app(
        "/grpc",
        10_500,
        grpc::labels(HOST, "h2"),
        &[mute, good.port()]
    )]))
    .await;
    let channel = grpc::channel(proxy.handle.http_addr.unwrap(), HOST).await;
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let channel = channel.clone();
            tokio::spawn(async move {
                grpc::unary(&channel, Request::new(Bytes::from_static(b"call"))).await
            })
        })
        .collect();
    closed.await.expect("a call reached the mute backend");
    for call in calls {
        let reply = call.await.unwrap();
        assert!(reply.is_ok(), "every call answered: {reply:?}");
    }
    assert_eq!(good.calls(), 4, "all four served by the task that spoke");
}

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

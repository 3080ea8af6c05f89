//! The four call shapes, each message forwarded as it arrives; statuses and metadata both ways;
//! deadlines forwarded; a client's cancellation reaching the backend.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};

use super::through_proxy;
use crate::support::grpc::{self, GrpcBackend};

#[tokio::test]
async fn unary_calls_carry_metadata_both_ways_and_messages_of_several_mib() {
    let backend = GrpcBackend::start("a").await;
    let (_proxy, channel) = through_proxy(&[&backend], "h2").await;
    // 3.5 MiB: under gRPC's usual 4 MiB message limit, which tonic applies.
    let big = Bytes::from((0..7 << 19).map(|i| i as u8).collect::<Vec<u8>>());
    let mut request = Request::new(big.clone());
    request
        .metadata_mut()
        .insert("x-echo", MetadataValue::from_static("hello"));
    let response = grpc::unary(&channel, request).await.unwrap();
    assert_eq!(response.metadata().get("x-backend").unwrap(), "a");
    assert_eq!(response.metadata().get("x-echo").unwrap(), "hello");
    assert_eq!(
        response.into_inner(),
        big,
        "the 3.5 MiB message came back whole"
    );
}

#[tokio::test]
async fn server_streams_arrive_whole() {
    let backend = GrpcBackend::start("a").await;
    let (_proxy, channel) = through_proxy(&[&backend], "h2").await;
    let mut stream = grpc::server_stream(&channel, 500, 1000).await.unwrap();
    let mut received = 0;
    while let Some(message) = stream.message().await.unwrap() {
        assert_eq!(message.len(), 1000);
        received += 1;
    }
    assert_eq!(received, 500);
}

#[tokio::test]
async fn client_streams_arrive_whole() {
    let backend = GrpcBackend::start("a").await;
    let (_proxy, channel) = through_proxy(&[&backend], "h2").await;
    let messages = tokio_stream::iter((0..300).map(|_| Bytes::from(vec![1u8; 3000])));
    let (count, bytes) = grpc::client_stream(&channel, messages).await.unwrap();
    assert_eq!((count, bytes), (300, 900_000));
}

/// Lock-step: each message is sent only once the last came back. A proxy that held messages
/// back (buffering a body, waiting for a request's end) would stall it.
#[tokio::test]
async fn a_lock_step_bidirectional_stream_does_not_stall() {
    let backend = GrpcBackend::start("a").await;
    let (_proxy, channel) = through_proxy(&[&backend], "h2").await;
    let (tx, mut rx) = grpc::bidi(&channel).await.unwrap();
    for i in 0..50u32 {
        let message = Bytes::from(i.to_be_bytes().to_vec());
        tx.send(message.clone()).await.unwrap();
        let echoed = tokio::time::timeout(Duration::from_secs(10), rx.message())
            .await
            .expect("the echo came back while the stream stays open")
            .unwrap()
            .unwrap();
        assert_eq!(echoed, message);
    }
    drop(tx);
    assert!(rx.message().await.unwrap().is_none(), "then OK");
}

#[tokio::test]
async fn statuses_messages_and_trailing_metadata_are_relayed() {
    let backend = GrpcBackend::start("a").await;
    let (proxy, channel) = through_proxy(&[&backend], "h2").await;
    for code in [Code::NotFound, Code::PermissionDenied, Code::Internal] {
        let mut request = Request::new(Bytes::from_static(b"x"));
        let value = (code as i32).to_string();
        request
            .metadata_mut()
            .insert("x-fail", value.parse().unwrap());
        // tonic answers an error before any message as Trailers-Only.
        let status = grpc::unary(&channel, request).await.unwrap_err();
        assert_eq!(status.code(), code);
        assert_eq!(status.message(), "failed as asked");
        assert_eq!(status.metadata().get("x-why").unwrap(), "asked-to-fail");
    }
    grpc::unary(&channel, Request::new(Bytes::from_static(b"ok")))
        .await
        .unwrap();
    // The status of a stream comes in its trailers.
    let mut stream = grpc::server_stream(&channel, 3, 10).await.unwrap();
    while stream.message().await.unwrap().is_some() {}
    let metrics = proxy.admin_text("/metrics").await;
    let count = |code: &str| {
        crate::support::metric(
            &metrics,
            &format!(
                "switchyard_grpc_responses_total{{backend=\"grpc_10500\",grpc_code=\"{code}\"}}"
            ),
        )
    };
    assert_eq!(count("OK"), 2.0, "{metrics}");
    assert_eq!(count("NOT_FOUND"), 1.0);
    assert_eq!(count("INTERNAL"), 1.0);
}

#[tokio::test]
async fn a_deadline_reaches_the_backend() {
    let backend = GrpcBackend::start("a").await;
    let (_proxy, channel) = through_proxy(&[&backend], "h2").await;
    let mut request = Request::new(Bytes::from_static(b"x"));
    request.set_timeout(Duration::from_secs(7));
    grpc::unary(&channel, request).await.unwrap();
    let timeout = backend.seen.grpc_timeout.lock().unwrap().clone();
    let timeout = timeout.expect("grpc-timeout was forwarded");
    assert!(
        timeout.ends_with(['u', 'm', 'S', 'n', 'M', 'H']),
        "{timeout}"
    );
}

/// A stream that runs until its client goes: dropping it (RST_STREAM) reaches the backend,
/// which stops. The time it took is printed (a figure, not an assertion).
#[tokio::test]
async fn a_cancelled_call_is_cancelled_at_the_backend() {
    let backend = GrpcBackend::start("a").await;
    let (told, cancelled) = tokio::sync::oneshot::channel();
    *backend.seen.cancelled.lock().unwrap() = Some(told);
    let (_proxy, channel) = through_proxy(&[&backend], "h2").await;
    let mut stream = grpc::server_stream(&channel, 0, 100).await.unwrap();
    for _ in 0..3 {
        stream.message().await.unwrap().unwrap();
    }
    let dropped = Instant::now();
    drop(stream);
    tokio::time::timeout(Duration::from_secs(20), cancelled)
        .await
        .expect("the backend's stream was cancelled")
        .unwrap();
    eprintln!(
        "cancellation reached the backend in {:?}",
        dropped.elapsed()
    );
}

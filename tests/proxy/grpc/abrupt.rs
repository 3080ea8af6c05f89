//! A backend whose connection breaks while calls are in flight (reset, or a GOAWAY with an
//! error code then a close): the calls it had taken fail cleanly, the task is backed off, and
//! later calls succeed, on another task and then on a new connection to it. The graceful
//! GOAWAY is `churn.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tonic::{Code, Request};

use super::HOST;
use crate::support::grpc::{self, GrpcBackend};
use crate::support::proxy::app;

/// How the dying backend ends the connections holding its calls.
#[derive(Clone, Copy)]
enum Death {
    /// A TCP reset, no HTTP/2 goodbye.
    Reset,
    /// GOAWAY with `INTERNAL_ERROR`, naming the last stream it took, then a close.
    GoAwayWithError,
}

/// Calls the dying backend takes before its connection breaks: a server stream, answered with
/// its head and one message, and then three unary calls left unanswered (enough to back the
/// task off: three failed calls in a row).
const HELD: usize = 4;

/// An HTTP/2 gRPC backend that holds the first [`HELD`] calls and then breaks the connections
/// that carry them as `death` says; it answers every later call with OK and its message back.
/// Returns its port and its connection count.
async fn dying_backend(death: Death) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let held = Arc::new(AtomicUsize::new(0));
    let (die, dying) = watch::channel(false);
    let die = Arc::new(die);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let (held, die, dying) = (held.clone(), die.clone(), dying.clone());
            tokio::spawn(serve(stream, death, held, die, dying));
        }
    });
    (port, connections)
}

async fn serve(
    stream: TcpStream,
    death: Death,
    held: Arc<AtomicUsize>,
    die: Arc<watch::Sender<bool>>,
    mut dying: watch::Receiver<bool>,
) {
    if let Death::Reset = death {
        // Closing then sends RST, not FIN.
        stream.set_zero_linger().unwrap();
    }
    let Ok(mut conn) = h2::server::handshake(stream).await else {
        return;
    };
    // What this connection holds: the calls' halves, kept unanswered until it breaks.
    let mut holding = Vec::new();
    let mut streaming = Vec::new();
    loop {
        tokio::select! {
            accepted = conn.accept() => {
                let Some(Ok((request, mut respond))) = accepted else {
                    return;
                };
                let taken = held.fetch_add(1, Ordering::SeqCst);
                if taken >= HELD {
                    tokio::spawn(answer(request, respond));
                    continue;
                }
                if request.uri().path() == grpc::SERVER_STREAM {
                    let mut send = respond.send_response(head(), false).unwrap();
                    send.send_data(message(b"first"), false).unwrap();
                    streaming.push(send);
                } else {
                    holding.push(respond);
                }
                if taken + 1 == HELD {
                    die.send_replace(true);
                }
            }
            () = told(&mut dying), if !holding.is_empty() || !streaming.is_empty() => {
                match death {
                    Death::Reset => return,
                    Death::GoAwayWithError => {
                        conn.abrupt_shutdown(h2::Reason::INTERNAL_ERROR);
                        // Polled until the GOAWAY is out and the connection closed.
                        while let Some(Ok(_)) = conn.accept().await {}
                        return;
                    }
                }
            }
        }
    }
}

/// Once the backend is to break its connections.
async fn told(dying: &mut watch::Receiver<bool>) {
    let _ = dying.wait_for(|die| *die).await;
}

/// A gRPC response head: 200, `content-type: application/grpc`, `x-backend: dying`.
fn head() -> http::Response<()> {
    http::Response::builder()
        .header("content-type", "application/grpc")
        .header("x-backend", "dying")
        .body(())
        .unwrap()
}

/// One gRPC message, framed (uncompressed, length-prefixed).
fn message(bytes: &[u8]) -> Bytes {
    let mut framed = Vec::with_capacity(5 + bytes.len());
    framed.put_u8(0);
    framed.put_u32(bytes.len() as u32);
    framed.put_slice(bytes);
    Bytes::from(framed)
}

/// A unary call answered: its message back, then `grpc-status: 0`.
async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
) {
    let mut body = request.into_body();
    let mut whole = Vec::new();
    while let Some(Ok(data)) = body.data().await {
        let _ = body.flow_control().release_capacity(data.len());
        whole.extend_from_slice(&data);
    }
    let Ok(mut send) = respond.send_response(head(), false) else {
        return;
    };
    let _ = send.send_data(Bytes::from(whole), false);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let _ = send.send_trailers(trailers);
}

async fn calls_in_flight_fail_cleanly_when_the_connection_breaks(death: Death) {
    let (port, connections) = dying_backend(death).await;
    let proxy = crate::support::proxy::Proxy::start(json!([app(
        "/grpc",
        10_500,
        grpc::labels(HOST, "h2"),
        &[port]
    )]))
    .await;
    let addr = proxy.handle.http_addr.unwrap();
    let channel = grpc::channel(addr, HOST).await;
    // A stream whose head and first message came; then three calls that wait for theirs.
    let mut stream = grpc::server_stream(&channel, 1, 1).await.unwrap();
    assert_eq!(stream.message().await.unwrap().unwrap(), "first");
    let waiting: Vec<_> = (0..HELD - 1)
        .map(|_| {
            let channel = channel.clone();
            tokio::spawn(async move {
                grpc::unary(&channel, Request::new(Bytes::from_static(b"held"))).await
            })
        })
        .collect();
    for call in waiting {
        let status = call.await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(status.message(), "the backend failed");
    }
    // The stream had its head: it can only be cut short (RST_STREAM INTERNAL_ERROR, which
    // gRPC reads as INTERNAL: the call may have been partly carried out).
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    let broken = connections.load(Ordering::SeqCst);

    let table = proxy.handle.table.load_full();
    let backend = &table.backends()[0];
    assert_eq!(
        backend.metrics.grpc_answered(Code::Unavailable as u8),
        (HELD - 1) as u64,
        "the balancer's answers are counted under the backend"
    );
    let metrics = proxy.admin_text("/metrics").await;
    let ejections = crate::support::metric(&metrics, "switchyard_endpoint_ejections_total");
    assert_eq!(
        ejections, 1.0,
        "three failed calls in a row back the task off"
    );

    // Another task joins: calls go there while the broken one is backed off.
    let other = GrpcBackend::start("other").await;
    proxy
        .set_apps(json!([app(
            "/grpc",
            10_500,
            grpc::labels(HOST, "h2"),
            &[port, other.port()]
        )]))
        .await;
    let call = || grpc::unary(&channel, Request::new(Bytes::from_static(b"again")));
    // Past its back-off, the broken task takes calls again, on a new connection.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut answered = 0u64;
    loop {
        let response = call().await.expect("every later call succeeds");
        assert_eq!(response.get_ref(), "again");
        answered += 1;
        if response.metadata().get("x-backend").unwrap() == "dying" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backed-off task never took a call again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(connections.load(Ordering::SeqCst) > broken);
    let table = proxy.handle.table.load_full();
    let ok = table.backends()[0].metrics.grpc_answered(Code::Ok as u8);
    assert_eq!(ok, answered, "each OK counted once");
}

#[tokio::test]
async fn calls_in_flight_fail_cleanly_when_the_backend_resets_the_connection() {
    calls_in_flight_fail_cleanly_when_the_connection_breaks(Death::Reset).await;
}

#[tokio::test]
async fn calls_in_flight_fail_cleanly_when_the_backend_goes_away_with_an_error() {
    calls_in_flight_fail_cleanly_when_the_connection_breaks(Death::GoAwayWithError).await;
}

//! Upgraded and streaming connections during the drain: they keep working and are cut at the
//! drain deadline (C4).

use super::*;

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

//! Bytes as a Marathon `/v2/events` body → `eventsource-client`'s SSE parser (the one
//! `marathon::events` uses, reached through its transport trait) → our event → change handling.

use std::sync::OnceLock;

use bytes::Bytes;
use eventsource_client::{self as es, Client as _};
use futures_util::StreamExt;
use launchdarkly_sdk_transport::{ByteStream, HttpTransport, Request, ResponseFuture};
use switchyard::marathon::change::{affected_apps, ChangeSignal, MAX_APPS_PER_REFRESH};

/// A transport whose only response is 200 with the fuzz input as its body, in chunks.
#[derive(Clone)]
struct FixedBody(Vec<Bytes>);

impl HttpTransport for FixedBody {
    fn request(&self, _request: Request<Option<Bytes>>) -> ResponseFuture {
        let chunks = self.0.clone();
        Box::pin(async move {
            let body: ByteStream = Box::pin(futures_util::stream::iter(chunks.into_iter().map(Ok)));
            Ok(http::Response::builder()
                .status(200)
                .header("content-type", "text/event-stream")
                .body(body)
                .expect("a static response builds"))
        })
    }
}

pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime starts")
    })
}

/// Drives one stream body. The first byte sets the chunk size (a stream splits anywhere).
pub fn event_stream(data: &[u8]) {
    let Some((&chunk, body)) = data.split_first() else {
        return;
    };
    let chunks: Vec<Bytes> = body
        .chunks(usize::from(chunk.max(1)))
        .map(Bytes::copy_from_slice)
        .collect();
    runtime().block_on(async move {
        let client = es::ClientBuilder::for_url("http://marathon.invalid/v2/events")
            .expect("a static URL parses")
            .reconnect(es::ReconnectOptions::reconnect(false).build())
            .redirect_limit(0)
            .build_with_transport(FixedBody(chunks));
        let mut stream = client.stream();
        let signal = ChangeSignal::default();
        // Every item consumes input or ends the stream: more items than bytes is a loop.
        let mut items = 0usize;
        while let Some(item) = stream.next().await {
            items += 1;
            assert!(items <= body.len() + 3, "the SSE stream does not end");
            match item {
                Ok(es::SSE::Event(event)) => {
                    if let Some(apps) = affected_apps(&event.event_type, &event.data) {
                        for app in &apps {
                            assert!(
                                event.event_type.starts_with("deployment_") || app.starts_with('/'),
                                "{} named a relative app id {app:?}",
                                event.event_type
                            );
                        }
                    }
                    signal.event(&event.event_type, &event.data);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let pending = signal.take();
        assert!(pending.all || pending.apps.len() <= MAX_APPS_PER_REFRESH);
        assert!(
            !pending.all || pending.apps.is_empty(),
            "`all` supersedes the app list"
        );
    });
}

//! Serve mode polling Marathon (`poll` mode): changes are routed, an outage keeps the last table.

use crate::support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use support::proxy::*;
use switchyard::marathon::MarathonConfig;
use switchyard::proxy::ProxyConfig;
use switchyard::serve::{MarathonSource, Source};
use tokio::net::TcpListener;

/// A loopback Marathon whose `/v2/apps` answer (status and body) the test sets.
#[derive(Clone)]
struct Marathon(Arc<Mutex<(u16, Vec<u8>)>>);

impl Marathon {
    async fn start(apps: serde_json::Value) -> (Marathon, String) {
        let marathon = Marathon(Arc::new(Mutex::new((200, Vec::new()))));
        marathon.set(apps);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = marathon.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let (status, body) = state.0.lock().unwrap().clone();
                            let wanted = req.uri().path() == "/v2/apps"
                                && req.uri().query() == Some("embed=apps.tasks");
                            let status = if wanted { status } else { 404 };
                            async move {
                                Ok::<_, Infallible>(
                                    Response::builder()
                                        .status(status)
                                        .body(Full::new(Bytes::from(body)))
                                        .unwrap(),
                                )
                            }
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        (marathon, url)
    }

    fn set(&self, apps: serde_json::Value) {
        *self.0.lock().unwrap() = (200, serde_json::to_vec(&json!({ "apps": apps })).unwrap());
    }

    fn fail(&self, status: u16) {
        self.0.lock().unwrap().0 = status;
    }
}

#[tokio::test]
async fn marathon_changes_are_routed_and_an_outage_keeps_the_last_table() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let app_on = |port: u16| {
        json!([app(
            "/web",
            10996,
            json!({"HAPROXY_0_VHOST": "m.example.com"}),
            &[port]
        )])
    };
    let (marathon, url) = Marathon::start(app_on(a.port())).await;
    // The first URL is down: the next one is used.
    let config = MarathonConfig {
        urls: vec![format!("http://127.0.0.1:{}", closed_port()), url],
        ..MarathonConfig::default()
    };
    let source = Source::Marathon(MarathonSource {
        events: false,
        ..MarathonSource::new(config)
    });
    let handle = serve_on_loopback(source, Duration::from_millis(20), ProxyConfig::default()).await;
    let proxy_url = format!("http://{}/", handle.http_addr.unwrap());
    let c = client();
    assert_eq!(get(&c, &proxy_url, "m.example.com").await.1, "a");

    // An unchanged document builds nothing; a changed one is routed.
    let polls = handle.refreshes();
    handle.wait_refreshes(polls + 3).await;
    assert_eq!(
        handle.generation(),
        1,
        "identical documents build no new table"
    );
    marathon.set(app_on(b.port()));
    handle.wait_generation(2).await;
    assert_eq!(get(&c, &proxy_url, "m.example.com").await.1, "b");

    // Marathon answers 503: the last good table keeps serving.
    marathon.fail(503);
    let polls = handle.refreshes();
    handle.wait_refreshes(polls + 3).await;
    assert_eq!(handle.generation(), 2);
    assert_eq!(get(&c, &proxy_url, "m.example.com").await.1, "b");

    // Recovery with a change made during the outage.
    marathon.set(app_on(a.port()));
    handle.wait_generation(3).await;
    assert_eq!(get(&c, &proxy_url, "m.example.com").await.1, "a");
    handle.shutdown().await;
}

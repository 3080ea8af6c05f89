//! The demo's backends: small real HTTP servers on loopback, one per task, that answer with a
//! page naming the app and the task, so a user sees the balancing and the changes.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{Either, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A running backend; dropping it does not stop it, [`DemoBackend::stop`] does.
#[derive(Debug)]
pub struct DemoBackend {
    pub addr: SocketAddr,
    stop: CancellationToken,
    abort: CancellationToken,
}

impl DemoBackend {
    /// Serves `body_prefix` plus this backend's port on 127.0.0.1 at a free port.
    pub async fn start(app: &str, version: u32) -> std::io::Result<DemoBackend> {
        DemoBackend::start_failing(app, version, None, std::time::Duration::ZERO).await
    }

    /// As [`DemoBackend::start`], answering 503 on `failing` (a health check's path: a
    /// version that never gets healthy) and taking `delay` over every answer's body, after its
    /// head (requests stay in flight a while, and one cut short cannot pass for unanswered).
    pub async fn start_failing(
        app: &str,
        version: u32,
        failing: Option<String>,
        delay: std::time::Duration,
    ) -> std::io::Result<DemoBackend> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let abort = CancellationToken::new();
        let body = Bytes::from(format!(
            "{app} (version {version}) answered from 127.0.0.1:{}\n",
            addr.port()
        ));
        let (token, aborted) = (stop.clone(), abort.clone());
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                    () = token.cancelled() => return,
                };
                let (body, token, failing) = (body.clone(), token.clone(), failing.clone());
                let aborted = aborted.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let fails = failing.as_deref() == Some(req.uri().path());
                            let body = body.clone();
                            async move {
                                let body = if delay.is_zero() {
                                    Either::Left(Full::new(body))
                                } else {
                                    Either::Right(StreamBody::new(futures_util::stream::once(
                                        async move {
                                            tokio::time::sleep(delay).await;
                                            Ok::<_, Infallible>(Frame::data(body))
                                        },
                                    )))
                                };
                                let mut response = Response::new(body);
                                if fails {
                                    *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                                }
                                response.headers_mut().insert(
                                    hyper::header::CONTENT_TYPE,
                                    hyper::header::HeaderValue::from_static(
                                        "text/plain; charset=utf-8",
                                    ),
                                );
                                Ok::<_, Infallible>(response)
                            }
                        });
                    let connection = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => {}
                        () = token.cancelled() => {
                            connection.as_mut().graceful_shutdown();
                            tokio::select! {
                                _ = connection => {}
                                () = aborted.cancelled() => {}
                            }
                        }
                    }
                });
            }
        });
        Ok(DemoBackend { addr, stop, abort })
    }

    /// Stops accepting and closes idle connections (a killed task).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Stops at once, closing every connection, requests in flight included (a task killed
    /// without draining: what a load balancer must not send requests to).
    pub fn abort(&self) {
        self.stop.cancel();
        self.abort.cancel();
    }
}

//! A real gRPC stack on both sides of the proxy: a tonic server (cleartext or TLS) with one
//! method of each call shape, and tonic clients. Messages are raw bytes (a codec of our own), so
//! no protobuf code is generated; what the proxy sees is gRPC's own framing either way.
#![allow(dead_code)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::StreamExt;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::server::Grpc;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status, Streaming};

/// Messages as they are: bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The methods, as paths.
pub const UNARY: &str = "/test.Echo/Unary";
pub const SERVER_STREAM: &str = "/test.Echo/ServerStream";
pub const CLIENT_STREAM: &str = "/test.Echo/ClientStream";
pub const BIDI: &str = "/test.Echo/Bidi";

/// What the server saw, for the tests to check.
#[derive(Default)]
pub struct Seen {
    pub calls: AtomicUsize,
    /// The `grpc-timeout` of the last call that had one.
    pub grpc_timeout: Mutex<Option<String>>,
    /// Told when a server stream's client went away (its call was cancelled).
    pub cancelled: Mutex<Option<oneshot::Sender<()>>>,
}

/// A gRPC server on loopback (HTTP/2 only, as gRPC servers are).
pub struct GrpcBackend {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub seen: Arc<Seen>,
    stop: Option<oneshot::Sender<()>>,
    stopped: Option<tokio::task::JoinHandle<()>>,
}

impl GrpcBackend {
    pub async fn start(name: &'static str) -> GrpcBackend {
        GrpcBackend::start_with(name, None).await
    }

    /// With `tls` (certificate and key, PEM): TLS with ALPN h2.
    pub async fn start_with(name: &'static str, tls: Option<(String, String)>) -> GrpcBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        GrpcBackend::serve(listener, name, tls)
    }

    /// Serves on `listener` (the load benchmark's backend binds fixed ports).
    pub fn serve(
        listener: TcpListener,
        name: &'static str,
        tls: Option<(String, String)>,
    ) -> GrpcBackend {
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let service = Echo {
            name,
            seen: seen.clone(),
        };
        let (stop, stopping) = oneshot::channel::<()>();
        let mut server = tonic::transport::Server::builder();
        if let Some((cert, key)) = tls {
            // tonic's TLS takes rustls' process default, which two providers in the build
            // (ring, aws-lc-rs) leave unset.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let identity = tonic::transport::Identity::from_pem(cert, key);
            server = server
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .unwrap();
        }
        let incoming = TcpListenerStream::new(listener);
        let stopped = tokio::spawn(async move {
            let _ = server
                .serve_with_incoming_shutdown(service, incoming, async {
                    let _ = stopping.await;
                })
                .await;
        });
        GrpcBackend {
            name,
            addr,
            seen,
            stop: Some(stop),
            stopped: Some(stopped),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn calls(&self) -> usize {
        self.seen.calls.load(Ordering::SeqCst)
    }

    /// A graceful stop, as a task being replaced does: GOAWAY on every connection, calls in
    /// flight finish, the listener closes. Returns once the server has stopped.
    pub async fn stop_gracefully(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            let _ = stopped.await;
        }
    }
}

#[derive(Clone)]
struct Echo {
    name: &'static str,
    seen: Arc<Seen>,
}

impl tonic::server::NamedService for Echo {
    const NAME: &'static str = "test.Echo";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Messages = Pin<Box<dyn tokio_stream::Stream<Item = Result<Bytes, Status>> + Send>>;

impl tower_service::Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let echo = self.clone();
        echo.seen.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(timeout) = request.headers().get("grpc-timeout") {
            *echo.seen.grpc_timeout.lock().unwrap() = timeout.to_str().ok().map(str::to_owned);
        }
        let path = request.uri().path().to_owned();
        Box::pin(async move {
            let mut grpc = Grpc::new(Raw);
            let response = match path.as_str() {
                UNARY => {
                    grpc.unary(tower::service_fn(move |r| echo.clone().unary(r)), request)
                        .await
                }
                SERVER_STREAM => {
                    let svc = tower::service_fn(move |r| echo.clone().server_stream(r));
                    grpc.server_streaming(svc, request).await
                }
                CLIENT_STREAM => {
                    let svc = tower::service_fn(move |r| echo.clone().client_stream(r));
                    grpc.client_streaming(svc, request).await
                }
                BIDI => {
                    let svc = tower::service_fn(move |r| echo.clone().bidi(r));
                    grpc.streaming(svc, request).await
                }
                _ => Status::unimplemented("no such method").into_http(),
            };
            Ok(response)
        })
    }
}

impl Echo {
    /// Echoes the message with the server's name in `x-backend`, and `x-echo` back. A request
    /// with `x-fail: <code>` fails with that code, a message, and trailing metadata `x-why`.
    async fn unary(self, request: Request<Bytes>) -> Result<Response<Bytes>, Status> {
        let metadata = request.metadata().clone();
        if let Some(code) = metadata.get("x-fail").and_then(|v| v.to_str().ok()) {
            let code = Code::from_i32(code.parse().unwrap());
            let mut trailing = MetadataMap::new();
            trailing.insert("x-why", MetadataValue::from_static("asked-to-fail"));
            return Err(Status::with_metadata(code, "failed as asked", trailing));
        }
        let mut response = Response::new(request.into_inner());
        response
            .metadata_mut()
            .insert("x-backend", MetadataValue::from_static(self.name));
        if let Some(echo) = metadata.get("x-echo") {
            response.metadata_mut().insert("x-echo", echo.clone());
        }
        Ok(response)
    }

    /// The request is `count` (u32) and `size` (u32): that many messages of that size, then
    /// OK. A count of 0 streams until the client goes away, which is told to `seen.cancelled`.
    async fn server_stream(self, request: Request<Bytes>) -> Result<Response<Messages>, Status> {
        let mut ask = request.into_inner();
        let (count, size) = (ask.get_u32(), ask.get_u32() as usize);
        let (tx, rx) = mpsc::channel(4);
        let seen = self.seen.clone();
        tokio::spawn(async move {
            let message = Bytes::from(vec![7u8; size]);
            let mut sent = 0u32;
            while count == 0 || sent < count {
                if tx.send(Ok(message.clone())).await.is_err() {
                    break;
                }
                sent += 1;
                if count == 0 {
                    // Forever, until the client leaves: then `send` fails or `closed` ends.
                    tokio::select! {
                        () = tx.closed() => break,
                        () = tokio::time::sleep(Duration::from_millis(5)) => {}
                    }
                }
            }
            if count == 0 {
                if let Some(told) = seen.cancelled.lock().unwrap().take() {
                    let _ = told.send(());
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx)) as Messages))
    }

    /// Answers with the number of messages and of bytes received (u64 each).
    async fn client_stream(
        self,
        request: Request<Streaming<Bytes>>,
    ) -> Result<Response<Bytes>, Status> {
        let mut stream = request.into_inner();
        let (mut messages, mut bytes) = (0u64, 0u64);
        while let Some(message) = stream.message().await? {
            messages += 1;
            bytes += message.len() as u64;
        }
        let mut answer = Vec::with_capacity(16);
        answer.put_u64(messages);
        answer.put_u64(bytes);
        Ok(Response::new(Bytes::from(answer)))
    }

    /// Each message back as it arrives.
    async fn bidi(self, request: Request<Streaming<Bytes>>) -> Result<Response<Messages>, Status> {
        let stream = request.into_inner();
        Ok(Response::new(Box::pin(stream.map(|m| m)) as Messages))
    }
}

/// A client channel to the proxy at `addr`, calling with `:authority` `host`.
pub async fn channel(addr: SocketAddr, host: &str) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .origin(format!("http://{host}").parse().unwrap())
        .connect()
        .await
        .unwrap()
}

pub async fn unary(channel: &Channel, request: Request<Bytes>) -> Result<Response<Bytes>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    grpc.unary(request, PathAndQuery::from_static(UNARY), Raw)
        .await
}

/// A server stream of `count` messages of `size` bytes (0: until dropped).
pub async fn server_stream(
    channel: &Channel,
    count: u32,
    size: u32,
) -> Result<Streaming<Bytes>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut ask = Vec::new();
    ask.put_u32(count);
    ask.put_u32(size);
    let request = Request::new(Bytes::from(ask));
    let path = PathAndQuery::from_static(SERVER_STREAM);
    Ok(grpc
        .server_streaming(request, path, Raw)
        .await?
        .into_inner())
}

/// (messages, bytes) the server received.
pub async fn client_stream(
    channel: &Channel,
    messages: impl tokio_stream::Stream<Item = Bytes> + Send + 'static,
) -> Result<(u64, u64), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = PathAndQuery::from_static(CLIENT_STREAM);
    let mut answer = grpc
        .client_streaming(Request::new(messages), path, Raw)
        .await?
        .into_inner();
    Ok((answer.get_u64(), answer.get_u64()))
}

/// A bidirectional stream: what is sent on the returned sender comes back on the stream.
pub async fn bidi(channel: &Channel) -> Result<(mpsc::Sender<Bytes>, Streaming<Bytes>), Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let (tx, rx) = mpsc::channel(1);
    let path = PathAndQuery::from_static(BIDI);
    let request = Request::new(ReceiverStream::new(rx));
    let stream = grpc.streaming(request, path, Raw).await?.into_inner();
    Ok((tx, stream))
}

/// A self-signed certificate for 127.0.0.1 (certificate PEM, key PEM).
pub fn certificate() -> (String, String) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "grpc.test".to_owned()])
            .unwrap();
    (cert.cert.pem(), cert.key_pair.serialize_pem())
}

/// The labels of a gRPC app on `host` (the vhost) with `protocol`.
pub fn labels(host: &str, protocol: &str) -> serde_json::Value {
    serde_json::json!({
        "HAPROXY_0_VHOST": host,
        "HAPROXY_0_BACKEND_PROTOCOL": protocol,
    })
}

//! gRPC and HTTP/2 to backends through the proxy, with tonic on both sides: the four call
//! shapes, statuses and metadata, deadlines and cancellation (`calls.rs`); how backends are
//! spoken to and the balancer's own answers (`backends.rs`); a backend's GOAWAY in churn
//! (`churn.rs`); a backend's connection broken under calls (`abrupt.rs`); a backend gone
//! silent, found by PING (`liveness.rs`); WebSocket to an HTTP/2 backend (`websocket.rs`).

mod abrupt;
mod backends;
mod calls;
mod churn;
mod liveness;
mod request_body;
mod websocket;

use crate::support::grpc::{self, GrpcBackend};
use crate::support::proxy::{app, Proxy};

pub const HOST: &str = "grpc.test";

/// A proxy routing `HOST` to `backends` spoken to with `protocol`; and a channel to it.
pub async fn through_proxy(
    backends: &[&GrpcBackend],
    protocol: &str,
) -> (Proxy, tonic::transport::Channel) {
    let ports: Vec<u16> = backends.iter().map(|b| b.port()).collect();
    let proxy = Proxy::start(serde_json::json!([app(
        "/grpc",
        10_500,
        grpc::labels(HOST, protocol),
        &ports
    )]))
    .await;
    let channel = grpc::channel(proxy.handle.http_addr.unwrap(), HOST).await;
    (proxy, channel)
}

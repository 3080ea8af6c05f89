//! The gRPC load benchmark's backend (`scripts/loadbench_grpc.py`): the tests' tonic echo
//! server (`tests/support/grpc.rs`: unary echo, server streams) on the loopback ports given.
//! Not a measurement itself: `cargo build --release --bench grpc_backend`, then
//! `grpc_backend PORT...` serves until killed.

#[path = "../tests/support/grpc.rs"]
mod grpc;

fn main() {
    let ports: Vec<u16> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if ports.is_empty() {
        eprintln!("usage: grpc_backend PORT...");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut servers = Vec::new();
        for port in ports {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:{port}: {e}"));
            servers.push(grpc::GrpcBackend::serve(listener, "bench", None));
        }
        std::future::pending::<()>().await
    });
}

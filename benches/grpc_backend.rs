//! The gRPC load benchmark's backend (`scripts/loadbench_grpc.py`): the tests' tonic echo
//! server (`tests/support/grpc.rs`: unary echo, server streams) on the loopback ports given.
//! Not a measurement itself: `cargo build --release --bench grpc_backend`, then
//! `grpc_backend PORT...` serves until killed. `grpc_backend slow-read ADDR HOST MIB` is the
//! slow client of the memory case: a server stream of MIB MiB in 64 KiB messages, read one
//! message a millisecond.

use std::time::Duration;

#[path = "../tests/support/grpc.rs"]
mod grpc;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    if args.first().map(String::as_str) == Some("slow-read") {
        let [_, addr, host, mib] = &args[..] else {
            eprintln!("usage: grpc_backend slow-read ADDR HOST MIB");
            std::process::exit(2);
        };
        let addr = addr.parse().expect("ADDR is ip:port");
        let messages: u32 = mib.parse::<u32>().expect("MIB is a number") * 16;
        runtime.block_on(slow_read(addr, host, messages));
        return;
    }
    let ports: Vec<u16> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if ports.is_empty() {
        eprintln!("usage: grpc_backend PORT...");
        std::process::exit(2);
    }
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

async fn slow_read(addr: std::net::SocketAddr, host: &str, messages: u32) {
    let channel = grpc::channel(addr, host).await;
    let mut stream = grpc::server_stream(&channel, messages, 64 * 1024)
        .await
        .expect("the call starts");
    let (mut received, mut bytes) = (0u32, 0u64);
    while let Some(message) = stream.message().await.expect("the stream goes on") {
        received += 1;
        bytes += message.len() as u64;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(received, messages, "every message came");
    println!("{bytes}");
}

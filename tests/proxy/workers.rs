//! `--threads 2`: two per-core workers, each accepting on every listener and keeping its own
//! upstream connections, seen from outside the real binary.

use crate::support;

use serde_json::json;
use support::process::Process;
use support::proxy::{app, free_port};
use support::raw::{ok, path_of, read_answer, Reply};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// `switchyard_worker_connections_total` by worker.
fn accepted_by_worker(metrics: &str) -> Vec<(String, u64)> {
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix("switchyard_worker_connections_total{worker=\""))
        .map(|rest| {
            let (worker, count) = rest.split_once("\"} ").unwrap();
            (worker.to_owned(), count.parse().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn two_workers_share_the_connections_and_reuse_upstream_connections() {
    let upstream =
        support::raw::RawUpstream::start(|_, _, head| Reply::Send(ok(path_of(head)))).await;
    let apps = json!([app(
        "/raw",
        free_port(),
        json!({"HAPROXY_0_VHOST": "raw.test"}),
        &[upstream.port]
    )]);
    let mut balancer = Process::start(apps, &[], &["--threads", "2"]);
    balancer.next_message("routing table published").await;
    const CONNECTIONS: u64 = 40;
    for c in 0..CONNECTIONS {
        // One after another: each connection's requests reuse whatever its worker pooled.
        let mut client = TcpStream::connect(balancer.http).await.unwrap();
        let mut buf = Vec::new();
        for r in 0..3 {
            let request = format!("GET /{c}/{r} HTTP/1.1\r\nHost: raw.test\r\n\r\n");
            client.write_all(request.as_bytes()).await.unwrap();
            let answer = read_answer(&mut client, &mut buf, false).await;
            assert_eq!(
                answer.body,
                format!("/{c}/{r}").as_bytes(),
                "{}",
                answer.head
            );
        }
    }
    let workers = accepted_by_worker(&balancer.metrics().await);
    assert_eq!(workers.len(), 2, "{workers:?}");
    assert_eq!(
        workers.iter().map(|(_, n)| n).sum::<u64>(),
        CONNECTIONS,
        "{workers:?}"
    );
    assert!(
        workers.iter().all(|&(_, n)| n > 0),
        "both workers accept: {workers:?}"
    );
    // Upstream connections are pooled per worker and reused: at most one per worker, not one
    // per client connection.
    assert!(upstream.connections() <= 2, "{}", upstream.connections());
}

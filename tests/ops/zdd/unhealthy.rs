//! A new version that never passes its health checks: `zdd` stops at `--max-wait` with a clear
//! message and a non-zero exit, and blue keeps serving everything, every task of it alive.

use super::{answers, succeed, Balancer, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_app_never_healthy_stops_at_max_wait_and_blue_serves_on() {
    let cluster = Cluster::start().await;
    let balancer = Balancer::start(&cluster.marathon(), "127.0.0.1", None).await;
    succeed(cluster.zdd(&cluster.app_file(2, 1, true), &[&balancer], &[])).await;
    balancer.wait_routed(2).await;
    let blue_tasks = cluster.task_ids("/web-blue");

    let green = cluster.zdd(&cluster.app_file(2, 2, false), &[&balancer], &["-w", "3"]);
    let (code, stdout, stderr) = green.finish().await;

    assert_eq!(code, 10, "the --max-wait exit status:\n{stdout}\n{stderr}");
    assert!(stderr.contains("--max-wait"), "{stderr}");
    assert!(stderr.contains("failing health checks"), "{stderr}");
    assert!(
        stderr.contains("--resume") && stderr.contains("--complete-prev"),
        "{stderr}"
    );
    assert_eq!(
        cluster.task_ids("/web-blue"),
        blue_tasks,
        "no blue task killed"
    );
    assert_eq!(cluster.app("/web-blue").unwrap()["instances"], 2);
    assert!(cluster.app("/web-green").is_some(), "green left for a look");
    assert!(answers(&balancer, 10)
        .await
        .iter()
        .all(|a| a == "/web-blue"));
    balancer.stop().await;
    cluster.shutdown().await;
}

//! A deployment interrupted halfway (SIGINT) stops between steps and leaves both colours;
//! `--resume` finishes it.

use super::{answers, succeed, Balancer, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_deployment_resumes_to_the_end() {
    let cluster = Cluster::start().await;
    let balancer = Balancer::start(&cluster.marathon(), "127.0.0.1", None).await;
    succeed(cluster.zdd(&cluster.app_file(4, 1, true), &[&balancer], &[])).await;
    balancer.wait_routed(4).await;

    let green_file = cluster.app_file(4, 2, true);
    let mut green = cluster.zdd(
        &green_file,
        &[&balancer],
        &["--linear-increase", "1", "-s", "0.5"],
    );
    let kill = green
        .next_line("killing 1 drained task(s) of /web-blue")
        .await;
    assert!(kill.is_some(), "no kill: {:#?}", green.finish().await);
    green.signal("INT");
    let (code, stdout, stderr) = green.finish().await;
    assert_eq!(code, 130, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("--resume"),
        "{stderr}"
    );
    let mut apps = cluster.app_ids();
    apps.sort();
    assert_eq!(apps, ["/web-blue", "/web-green"], "stopped halfway");
    let blue_left = cluster.task_ids("/web-blue").len();
    assert!((1..4).contains(&blue_left), "{blue_left} blue tasks left");

    let resumed = cluster.zdd(&green_file, &[&balancer], &["--resume"]);
    let out = succeed(resumed).await;
    assert!(out.contains("deleting /web-blue"), "{out}");
    assert_eq!(cluster.app_ids(), ["/web-green"]);
    assert_eq!(cluster.app("/web-green").unwrap()["instances"], 4);
    balancer.wait_routed(4).await;
    assert!(answers(&balancer, 8)
        .await
        .iter()
        .all(|a| a == "/web-green"));
    balancer.stop().await;
    cluster.shutdown().await;
}

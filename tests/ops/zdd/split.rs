//! `--new-instances 2` of 10: a split (hybrid) deployment whose traffic divides about 80/20,
//! ended once with `--complete-cur` (all to the new version) and once, from a second split,
//! with `--complete-prev` (all back to the previous one).

use super::{answers, succeed, Balancer, Cluster};

/// Requests measured per split.
const SAMPLE: usize = 200;

fn share(answers: &[String], app: &str) -> f64 {
    answers.iter().filter(|a| *a == app).count() as f64 / answers.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_serves_80_20_then_completes_either_way() {
    let cluster = Cluster::start().await;
    let balancer = Balancer::start(&cluster.marathon(), "127.0.0.1", None).await;
    succeed(cluster.zdd(&cluster.app_file(10, 1, true), &[&balancer], &[])).await;
    balancer.wait_routed(10).await;

    // Green takes 2 of the 10 instances.
    let out =
        succeed(cluster.zdd(&cluster.app_file(10, 2, true), &[&balancer], &["-n", "2"])).await;
    assert!(out.contains("done: split"), "{out}");
    assert_eq!(cluster.app("/web-blue").unwrap()["instances"], 8);
    assert_eq!(cluster.app("/web-green").unwrap()["instances"], 2);
    balancer.wait_routed(10).await;
    let measured = answers(&balancer, SAMPLE).await;
    let green = share(&measured, "/web-green");
    eprintln!(
        "split -n 2 of 10: green {:.1} %, blue {:.1} %",
        green * 100.0,
        share(&measured, "/web-blue") * 100.0
    );
    assert!((0.15..=0.25).contains(&green), "green's share {green}");
    assert!(measured
        .iter()
        .all(|a| a == "/web-blue" || a == "/web-green"));

    // A split must be ended before the next deployment.
    let (code, _, stderr) = cluster
        .zdd(&cluster.app_file(10, 3, true), &[&balancer], &[])
        .finish()
        .await;
    assert_eq!(code, 12, "{stderr}");
    assert!(stderr.contains("--complete-cur"), "{stderr}");

    // --complete-cur: everything to green, blue deleted.
    succeed(cluster.zdd(
        &cluster.app_file(10, 2, true),
        &[&balancer],
        &["--complete-cur"],
    ))
    .await;
    assert_eq!(cluster.app_ids(), ["/web-green"]);
    assert_eq!(cluster.app("/web-green").unwrap()["instances"], 10);
    balancer.wait_routed(10).await;
    assert!(answers(&balancer, 20)
        .await
        .iter()
        .all(|a| a == "/web-green"));

    // A second split (blue 2, green 8), then --complete-prev: everything back to green.
    succeed(cluster.zdd(&cluster.app_file(10, 3, true), &[&balancer], &["-n", "2"])).await;
    assert_eq!(cluster.app("/web-blue").unwrap()["instances"], 2);
    assert_eq!(cluster.app("/web-green").unwrap()["instances"], 8);
    balancer.wait_routed(10).await;
    let measured = answers(&balancer, SAMPLE).await;
    let blue = share(&measured, "/web-blue");
    eprintln!("second split -n 2 of 10: blue {:.1} %", blue * 100.0);
    assert!((0.15..=0.25).contains(&blue), "blue's share {blue}");
    succeed(cluster.zdd(
        &cluster.app_file(10, 3, true),
        &[&balancer],
        &["--complete-prev"],
    ))
    .await;
    assert_eq!(
        cluster.app_ids(),
        ["/web-green"],
        "the newest (blue) deleted"
    );
    assert_eq!(cluster.app("/web-green").unwrap()["instances"], 10);
    balancer.wait_routed(10).await;
    assert!(answers(&balancer, 20)
        .await
        .iter()
        .all(|a| a == "/web-green"));
    balancer.stop().await;
    cluster.shutdown().await;
}

//! Two balancer instances, one of them slower to see Marathon's changes (it polls a Marathon
//! node whose reads are held): no old task is killed until both route the new ones.

use super::{succeed, Balancer, Cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_tasks_live_until_every_balancer_routes_the_new_ones() {
    let cluster = Cluster::start_nodes(2).await;
    let fast = Balancer::start(&cluster.marathon(), "127.0.0.1", None).await;
    let slow_marathon = cluster.sim.urls()[1].clone();
    let slow = Balancer::start(&slow_marathon, "::1", Some("0.2")).await;
    succeed(cluster.zdd(&cluster.app_file(3, 1, true), &[&fast, &slow], &[])).await;
    fast.wait_routed(3).await;
    slow.wait_routed(3).await;
    let blue_tasks = cluster.task_ids("/web-blue");

    // From now on the slow balancer reads an old view: blue only.
    cluster.sim.hold_reads_on(1, true);
    let mut green = cluster.zdd(&cluster.app_file(3, 2, true), &[&fast, &slow], &[]);
    let waiting = green
        .next_line("routed on 1/2 balancers")
        .await
        .expect("zdd waits");
    assert!(waiting.contains("waiting"), "{waiting}");
    assert_eq!(
        cluster.task_ids("/web-blue"),
        blue_tasks,
        "nothing killed yet"
    );
    assert!(
        fast.routed().await.iter().any(|(_, draining)| *draining),
        "the fast one drains"
    );
    assert!(slow
        .routed()
        .await
        .iter()
        .all(|(id, _)| blue_tasks.contains(id)));

    cluster.sim.hold_reads_on(1, false);
    let (code, stdout, stderr) = green.finish().await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let first = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let both_route = first("routed on 2/2").expect("both balancers route green");
    let first_kill = first("killing").expect("blue's tasks killed");
    assert!(
        both_route < first_kill,
        "a kill before both balancers routed green:\n{stdout}"
    );
    assert_eq!(cluster.app_ids(), ["/web-green"]);
    fast.stop().await;
    slow.stop().await;
    cluster.shutdown().await;
}

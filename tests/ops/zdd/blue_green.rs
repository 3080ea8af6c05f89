//! A blue → green deployment under continuous load: not one request fails, every answer comes
//! from blue or green, the group's routes never change, and blue is gone at the end.

use super::load::Load;
use super::{answers, succeed, Balancer, Cluster, VHOST};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_to_green_under_load_fails_no_request() {
    let cluster = Cluster::start().await;
    let balancer = Balancer::start(&cluster.marathon(), "127.0.0.1", None).await;
    // The group's first deployment: blue, on the app's own service port.
    let blue = cluster.zdd(&cluster.app_file(4, 1, true), &[&balancer], &[]);
    let out = succeed(blue).await;
    assert!(out.contains("create /web-blue"), "{out}");
    assert_eq!(cluster.app_ids(), ["/web-blue"]);
    balancer.wait_routed(4).await;

    let load = Load::start(&balancer, cluster.service_port);
    // One instance a step: four kills, each a chance to cut a request short.
    let args = ["--linear-increase", "1", "-s", "0.3"];
    let green = cluster.zdd(&cluster.app_file(4, 2, true), &[&balancer], &args);
    let out = succeed(green).await;
    // Until the balancer has let go of blue's last tasks.
    balancer.wait_routed(4).await;
    let tally = load.stop().await;

    assert!(out.contains("deleting /web-blue"), "{out}");
    assert_eq!(cluster.app_ids(), ["/web-green"], "blue deleted");
    assert_eq!(cluster.app("/web-green").unwrap()["instances"], 4);
    assert!(
        tally.failures.is_empty(),
        "{} failed requests: {:#?}",
        tally.failures.len(),
        &tally.failures[..tally.failures.len().min(10)]
    );
    let apps: Vec<&str> = tally.by_app.keys().map(String::as_str).collect();
    assert_eq!(apps, ["/web-blue", "/web-green"], "{:?}", tally.by_app);
    assert_eq!(tally.route_sets.len(), 1, "{:#?}", tally.route_sets);
    let routes = tally.route_sets.first().unwrap();
    assert!(routes.contains(VHOST), "{routes}");
    assert!(
        routes.contains(&format!(":{}", cluster.service_port)),
        "the service port stays: {routes}"
    );
    assert!(answers(&balancer, 6)
        .await
        .iter()
        .all(|a| a == "/web-green"));
    eprintln!(
        "blue/green under load: {} requests, {:?}, 0 failed",
        tally.by_app.values().sum::<usize>(),
        tally.by_app
    );
    balancer.stop().await;
    cluster.shutdown().await;
}

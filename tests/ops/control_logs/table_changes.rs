//! Every published table says what it changed: backends added, removed or configured
//! otherwise, endpoints added and removed, each backend named. Patches of tasks (tables that
//! share the last one's indexes), label changes and whole apps coming and going.

use serde_json::{json, Value};
use switchyard::sim::simulator::TaskSpec;

use super::{app, message, simulator, Logged};

/// The next published table whose counts are `counts` (added, removed, configured backends;
/// added, removed endpoints); its `changes`.
fn next_table(logs: &mut Logged, what: &str, counts: [u64; 5]) -> String {
    let names = [
        "backends_added",
        "backends_removed",
        "backends_changed",
        "endpoints_added",
        "endpoints_removed",
    ];
    let table = logs.next(what, |v: &Value| {
        message(v) == "routing table published"
            && names
                .iter()
                .zip(counts)
                .all(|(name, n)| v["fields"][name].as_u64() == Some(n))
    });
    table["fields"]["changes"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_table_says_which_backends_and_endpoints_it_changed() {
    let sim = simulator().await;
    sim.put_app(app(
        "/web",
        10630,
        json!({"HAPROXY_0_VHOST": "web.example.com"}),
    ));
    let first = sim
        .start_task("/web", TaskSpec::running("127.0.0.1", vec![31021]))
        .unwrap();
    let mut logs = Logged::start(&sim.urls()[0], &[], "info");

    let changes = next_table(&mut logs, "the first table", [1, 0, 0, 1, 0]);
    assert_eq!(changes, "web_10630 added (1 endpoint)");

    sim.start_task("/web", TaskSpec::running("127.0.0.1", vec![31022]));
    let changes = next_table(&mut logs, "a task started", [0, 0, 0, 1, 0]);
    assert_eq!(changes, "web_10630: 1 endpoint added");

    sim.kill_task(&first);
    let changes = next_table(&mut logs, "a task killed", [0, 0, 0, 0, 1]);
    assert_eq!(changes, "web_10630: 1 endpoint removed");

    let balanced = json!({"HAPROXY_0_VHOST": "web.example.com", "HAPROXY_0_BALANCE": "leastconn"});
    sim.put_app(app("/web", 10630, balanced));
    let changes = next_table(&mut logs, "a label changed", [0, 0, 1, 0, 0]);
    assert_eq!(changes, "web_10630: configuration changed");

    sim.put_app(app("/api", 10631, json!({})));
    sim.start_task("/api", TaskSpec::running("127.0.0.1", vec![31023]));
    let changes = next_table(&mut logs, "an app added", [1, 0, 0, 1, 0]);
    assert_eq!(changes, "api_10631 added (1 endpoint)");

    sim.remove_app("/api");
    let changes = next_table(&mut logs, "an app removed", [0, 1, 0, 0, 1]);
    assert_eq!(changes, "api_10631 removed");
}

//! A label problem is logged when a table first has it (an error at WARN, naming app, port
//! index and label), never again while it persists, whatever rebuilds the table (a patch of
//! another app, a full rebuild), and once more at INFO when it goes away.

use serde_json::{json, Value};
use switchyard::sim::simulator::TaskSpec;

use super::{admin_get, app, level, message, simulator, Logged};

fn is_bad_balance(line: &Value) -> bool {
    let fields = &line["fields"];
    fields["kind"] == "invalid_label"
        && fields["app"] == "/bad"
        && fields["port_index"] == 0
        && fields["label"] == "HAPROXY_0_BALANCE"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_problem_is_logged_once_when_it_starts_and_once_when_it_is_resolved() {
    let sim = simulator().await;
    sim.put_app(app(
        "/web",
        10610,
        json!({"HAPROXY_0_VHOST": "web.example.com"}),
    ));
    sim.start_task("/web", TaskSpec::running("127.0.0.1", vec![31001]));
    sim.put_app(app("/bad", 10611, json!({"HAPROXY_0_BALANCE": "fastest"})));
    sim.start_task("/bad", TaskSpec::running("127.0.0.1", vec![31002]));
    let mut logs = Logged::start(&sim.urls()[0], &[], "info");
    let admin = logs.admin();

    // The first table: the problem, at WARN, with everything an operator needs to find it.
    let first = logs.published();
    let problem = logs.next("the invalid label", is_bad_balance);
    assert_eq!(level(&problem), "WARN", "{problem}");
    assert_eq!(
        problem["fields"]["generation"],
        first["fields"]["generation"]
    );
    assert!(message(&problem).contains("fastest"), "{problem}");
    assert_eq!(first["fields"]["problems_found"], 1, "{first}");

    // Another app changes (a patch), then the whole table is rebuilt (SIGUSR1): the problem
    // persists and is not logged again.
    sim.start_task("/web", TaskSpec::running("127.0.0.1", vec![31003]));
    let patched = logs.next("the patch of /web", |v| {
        message(v) == "routing table published" && v["fields"]["endpoints_added"] == 1
    });
    assert_eq!(patched["fields"]["problems_found"], 0, "{patched}");
    admin_get(&admin, "/_mlb_signal/usr1").await;
    let rebuilt = logs.next("the rebuilt table", |v| {
        message(v) == "routing table published"
            && v["fields"]["generation"].as_u64() > patched["fields"]["generation"].as_u64()
    });
    assert_eq!(rebuilt["fields"]["problems_found"], 0, "{rebuilt}");
    assert_eq!(rebuilt["fields"]["problems_resolved"], 0, "{rebuilt}");
    assert_eq!(
        logs.all(is_bad_balance).len(),
        1,
        "logged once: {:#?}",
        logs.seen
    );

    // Fixed: one INFO line says so.
    sim.put_app(app(
        "/bad",
        10611,
        json!({"HAPROXY_0_BALANCE": "leastconn"}),
    ));
    let resolved = logs.next("the resolved problem", |v| {
        is_bad_balance(v) && message(v).starts_with("resolved")
    });
    assert_eq!(level(&resolved), "INFO", "{resolved}");
    let fixed = logs
        .all(|v| message(v) == "routing table published" && v["fields"]["problems_resolved"] == 1);
    assert_eq!(fixed.len(), 1, "{:#?}", logs.seen);
    assert_eq!(logs.all(is_bad_balance).len(), 2, "{:#?}", logs.seen);
}

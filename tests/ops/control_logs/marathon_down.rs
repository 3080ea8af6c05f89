//! Marathon unreachable, then back, then gone again: each change of state is said once, and
//! what is said is true (no last good table before the first; a connect that failed is not a
//! stream that broke; no warning per retry from the event-stream crate).

use serde_json::{json, Value};
use switchyard::sim::simulator::TaskSpec;

use super::{admin_get, app, level, message, simulator, Logged};
use crate::support::metric;

fn read_failed(line: &Value) -> bool {
    level(line) == "ERROR" && message(line).starts_with("cannot read the apps")
}

fn stream_failed(line: &Value) -> bool {
    level(line) == "WARN" && message(line).starts_with("cannot open Marathon's event stream")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_down_and_back_is_logged_once_per_change_and_truthfully() {
    let sim = simulator().await;
    sim.put_app(app(
        "/web",
        10620,
        json!({"HAPROXY_0_VHOST": "web.example.com"}),
    ));
    sim.start_task("/web", TaskSpec::running("127.0.0.1", vec![31011]));
    sim.set_down(0, true);
    let mut logs = Logged::start(
        &sim.urls()[0],
        &["--max-backoff", "0.2"],
        "info,switchyard=debug",
    );
    let admin = logs.admin();

    // Several failed attempts of each kind: the stream's (each one at debug after the first)
    // and the reads' (counted in the metrics).
    logs.next("a second failed stream attempt", |v| {
        message(v).starts_with("cannot open Marathon's event stream") && level(v) == "DEBUG"
    });
    logs.next("a third failed stream attempt", |v| {
        message(v).starts_with("cannot open Marathon's event stream") && level(v) == "DEBUG"
    });
    loop {
        let metrics = admin_get(&admin, "/metrics").await;
        if metric(&metrics, "switchyard_source_errors_total") >= 2.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let reads = logs.all(read_failed);
    assert_eq!(
        reads.len(),
        1,
        "one line while the reads keep failing: {reads:#?}"
    );
    assert_eq!(
        message(&reads[0]),
        "cannot read the apps; nothing is routed until a read succeeds",
        "no table was ever served"
    );
    let streams = logs.all(stream_failed);
    assert_eq!(
        streams.len(),
        1,
        "one line while the stream keeps failing: {streams:#?}"
    );
    let error = streams[0]["fields"]["error"].as_str().unwrap();
    assert!(error.contains("cannot connect"), "{error}");
    assert!(
        !error.contains("transport error") && !error.contains("the stream broke"),
        "a connect that failed, said plainly: {error}"
    );
    let crate_lines = logs.all(|v| {
        v["target"]
            .as_str()
            .unwrap_or("")
            .starts_with("eventsource_client")
            && level(v) != "DEBUG"
            && level(v) != "TRACE"
    });
    assert!(crate_lines.is_empty(), "{crate_lines:#?}");

    // Back: the stream says how many attempts failed, the reads that they work again, the
    // table what it routes.
    sim.set_down(0, false);
    let connected = logs.next("the stream connected", |v| {
        message(v) == "Marathon event stream connected"
    });
    assert!(
        connected["fields"]["failed_attempts"].as_u64() >= Some(2),
        "{connected}"
    );
    let readable = logs.next("the reads recovered", |v| {
        message(v) == "apps readable again"
    });
    assert!(
        readable["fields"]["failed_reads"].as_u64() >= Some(2),
        "{readable}"
    );
    let table = logs.published();
    assert_eq!(table["fields"]["backends_added"], 1, "{table}");

    // Gone again with a table served: now the last good table is what is served.
    sim.set_down(0, true);
    logs.next("the stream lost", |v| {
        message(v).starts_with("Marathon event stream lost")
    });
    admin_get(&admin, "/_mlb_signal/hup").await;
    let failed = logs.next("the failed read", read_failed);
    assert_eq!(
        message(&failed),
        "cannot read the apps; serving the last good table"
    );
    assert_eq!(logs.all(read_failed).len(), 2, "{:#?}", logs.seen);
}

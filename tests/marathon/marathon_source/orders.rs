//! Whatever the order of Marathon's changes, its events and the balancer's reads (reads held
//! back and landing after later events among them), once the reads events owe have landed the
//! table is the one a full read of Marathon builds.

use super::*;

use proptest::prelude::*;
use switchyard::routing::report::RoutesReport;
use switchyard::routing::RoutingTable;

const APPS: usize = 3;

/// One thing that happens to Marathon (or between its changes).
#[derive(Debug, Clone)]
enum Op {
    /// A task of app `.0` starts on port `.1`.
    Start(usize, u16),
    /// An event about a task of app `.0` on port `.1` that Marathon does not have (a
    /// reordered or replayed report): the read it owes says otherwise, and wins.
    Ghost(usize, u16),
    /// The `.1`-th task of app `.0` (of those alive) is killed.
    Kill(usize, usize),
    /// Its health check says `.2`.
    Health(usize, usize, bool),
    /// The app's definition changes: its vhost becomes the `.1`-th.
    Relabel(usize, usize),
    Remove(usize),
    /// Marathon answers reads rendered now only when released: they land after later events.
    HoldReads(bool),
    /// Lets the balancer catch up for a while (varies the interleaving, asserts nothing).
    Pause(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..APPS, 0u16..4).prop_map(|(a, p)| Op::Start(a, p)),
        2 => (0..APPS, 0usize..3).prop_map(|(a, k)| Op::Kill(a, k)),
        1 => (0..APPS, 0u16..4).prop_map(|(a, p)| Op::Ghost(a, p)),
        3 => (0..APPS, 0usize..3, any::<bool>()).prop_map(|(a, k, h)| Op::Health(a, k, h)),
        1 => (0..APPS, 0usize..2).prop_map(|(a, v)| Op::Relabel(a, v)),
        1 => (0..APPS).prop_map(Op::Remove),
        2 => any::<bool>().prop_map(Op::HoldReads),
        2 => (0u64..15).prop_map(Op::Pause),
    ]
}

/// App `i`: a vhost and a service port; app 1 has a health check the balancer cannot run
/// itself (its tasks are routed on Marathon's verdicts alone).
fn app(i: usize, vhost: usize) -> Value {
    let mut app = json!({
        "id": format!("/p{i}"),
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": format!("p{i}-{vhost}.example.com")},
        "portDefinitions": [{"port": 10700 + i, "protocol": "tcp"}],
    });
    if i == 1 {
        app["healthChecks"] = json!([{"protocol": "COMMAND", "command": {"value": "true"}}]);
    }
    app
}

/// The table as the listing shows it, without its generation.
fn listing(table: &RoutingTable) -> Value {
    let mut report = serde_json::to_value(RoutesReport::new(table)).unwrap();
    report.as_object_mut().unwrap().remove("generation");
    report
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let sim = simulator(1, SimAuth::None).await;
    for i in 0..APPS {
        sim.put_app(app(i, 0));
    }
    let handle = start(source(sim.urls(), Credentials::None)).await;
    guarded("the stream", handle.wait_stream(|s| s.connected.is_some())).await;
    guarded("a first table", handle.wait_generation(1)).await;
    let mut tasks: Vec<Vec<String>> = vec![Vec::new(); APPS];
    for op in &ops {
        match *op {
            Op::Start(a, port) => {
                let spec = TaskSpec::running("127.0.0.1", vec![30000 + port]);
                if let Some(id) = sim.start_task(&format!("/p{a}"), spec) {
                    tasks[a].push(id);
                }
            }
            Op::Ghost(a, port) => sim.emit(
                "status_update_event",
                json!({"appId": format!("/p{a}"), "taskId": format!("p{a}.ghost-{port}"),
                       "taskStatus": "TASK_RUNNING", "host": "127.0.0.1",
                       "ports": [30000 + port], "version": "2026-01-01T00:00:00.000Z"}),
            ),
            Op::Kill(a, k) if !tasks[a].is_empty() => {
                let at = k % tasks[a].len();
                let id = tasks[a].remove(at);
                sim.kill_task(&id);
            }
            Op::Health(a, k, alive) if !tasks[a].is_empty() => {
                sim.set_task_health(&tasks[a][k % tasks[a].len()], alive);
            }
            Op::Relabel(a, vhost) => sim.put_app(app(a, vhost)),
            Op::Remove(a) => {
                sim.remove_app(&format!("/p{a}"));
                tasks[a].clear();
            }
            Op::HoldReads(held) => sim.hold_reads(held),
            Op::Pause(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Op::Kill(..) | Op::Health(..) => {}
        }
    }
    sim.hold_reads(false);
    let apps = sim.apps_json()["apps"].clone();
    let expected = listing(&support::table(apps, &support::options()));
    // Only the reads the events owe may bring it there: no periodic read runs in this test.
    let converged = tokio::time::timeout(GUARD, async {
        loop {
            let (generation, refreshes) = (handle.generation(), handle.refreshes());
            if listing(&handle.table.load()) == expected {
                return;
            }
            tokio::select! {
                _ = handle.wait_generation(generation + 1) => {}
                _ = handle.wait_refreshes(refreshes + 1) => {}
            }
        }
    })
    .await;
    let served = listing(&handle.table.load());
    handle.shutdown().await;
    sim.shutdown().await;
    prop_assert!(
        converged.is_ok(),
        "the table never became what a full read builds\nserved: {served:#}\nexpected: {expected:#}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn after_the_owed_reads_the_table_is_what_a_full_read_builds(
        ops in prop::collection::vec(op(), 1..30)
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(ops))?;
    }
}

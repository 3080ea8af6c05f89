//! `--dry` (Marathon-LB's `-d`) as `haproxy -c` and `nginx -t` users expect it, and the same exit
//! rule for `switchyard routes`: the real binary reads the source once, prints the table and its
//! problems, binds nothing, and exits 0 without error-severity problems, 1 with.

use std::path::PathBuf;

use serde_json::json;
use switchyard::sim::simulator::{Simulator, SimulatorOptions, TaskSpec};

use crate::support::proxy::app;

use super::{run, stderr, stdout};

/// An apps file with one routable app and no problem at all.
fn clean_apps(dir: &tempfile::TempDir) -> PathBuf {
    let apps = json!({"apps": [app("/web", 10980, json!({"HAPROXY_0_VHOST": "web.example.com"}), &[31990])]});
    let path = dir.path().join("apps.json");
    std::fs::write(&path, apps.to_string()).unwrap();
    path
}

#[tokio::test]
async fn dry_prints_the_table_and_its_problems_binds_nothing_and_exits_1_on_an_error() {
    // Held here: a balancer that tried to bind the HTTP port would fail.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    let output = run(&[
        "--dry",
        "--apps-file",
        "config/example-apps.json",
        "--bind-address",
        "127.0.0.1",
        "--http-port",
        &port,
    ])
    .await;
    let (text, err) = (stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(1), "{text}\n{err}");
    assert!(text.starts_with("LISTENER"), "{text}");
    assert!(text.contains("tweeter.example.com"), "{text}");
    assert!(
        text.contains("error   invalid_label app=/billing port_index=0 label=HAPROXY_0_BALANCE"),
        "{text}"
    );
    assert!(
        !err.contains("cannot bind") && !err.contains("switchyard serving"),
        "{err}"
    );
}

#[tokio::test]
async fn dry_exits_0_when_nothing_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let apps = clean_apps(&dir);
    let output = run(&["-d", "--apps-file", apps.to_str().unwrap()]).await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}\n{}", stderr(&output));
    assert!(
        text.contains("web.example.com") && text.contains("127.0.0.1:31990"),
        "{text}"
    );
    assert!(text.contains("0 problem(s)"), "{text}");
    assert!(text.contains("certificates: none given"), "{text}");
}

#[tokio::test]
async fn dry_reads_marathon_once_with_marathon_lb_s_arguments() {
    let sim = Simulator::start(SimulatorOptions::default()).await.unwrap();
    sim.put_app(json!({
        "id": "/web",
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com"},
        "portDefinitions": [{"port": 10980, "protocol": "tcp"}]
    }));
    sim.start_task("/web", TaskSpec::running("127.0.0.1", vec![31990]));
    let url = sim.urls()[0].clone();
    let output = run(&[
        "sse",
        "-m",
        &url,
        "--health-check",
        "--haproxy-map",
        "--group",
        "external",
        "-d",
    ])
    .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}\n{}", stderr(&output));
    assert!(
        text.contains("web.example.com") && text.contains("127.0.0.1:31990"),
        "{text}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_certificate_that_does_not_load_fails_the_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let apps = clean_apps(&dir);
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let output = run(&[
        "--dry",
        "--apps-file",
        apps.to_str().unwrap(),
        "--ssl-certs",
        missing,
    ])
    .await;
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}\n{}", stderr(&output));
    assert!(
        text.contains(&format!("error   certificate {missing}: cannot read")),
        "{text}"
    );
}

#[tokio::test]
async fn dry_with_bad_options_or_no_source_fails_as_a_start_would() {
    let dir = tempfile::tempdir().unwrap();
    let apps = clean_apps(&dir);
    let apps = apps.to_str().unwrap();
    let output = run(&["--dry", "--apps-file", apps, "--connect-timeout", "0"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("--connect-timeout"),
        "{}",
        stderr(&output)
    );
    let output = run(&["--dry"]).await;
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--marathon") && err.contains("--apps-file"),
        "{err}"
    );
}

#[tokio::test]
async fn routes_exits_0_without_errors_and_1_with() {
    let dir = tempfile::tempdir().unwrap();
    let apps = clean_apps(&dir);
    let output = run(&["routes", "--apps-file", apps.to_str().unwrap()]).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let output = run(&[
        "routes",
        "--apps-file",
        "config/example-apps.json",
        "--json",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(doc["problems"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["kind"] == "invalid_label"));
}

//! Logs from the real binary: JSON lines, the access log, Marathon-LB's level names.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use support::proxy::{app, client, free_port, get, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_an_access_line_per_request() {
    let web = Backend::start("web").await;
    let dir = tempfile::tempdir().unwrap();
    let apps_file = dir.path().join("apps.json");
    let apps = json!({"apps": [app("/web", 10850, json!({"HAPROXY_0_VHOST": "web.example.com"}), &[web.port()])]});
    std::fs::write(&apps_file, apps.to_string()).unwrap();
    let http = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "--apps-file",
            apps_file.to_str().unwrap(),
            "--bind-address",
            "127.0.0.1",
        ])
        .args([
            "--http-port",
            &http.to_string(),
            "--https-port",
            "0",
            "--app-id-port",
            "0",
        ])
        .args([
            "--admin-port",
            "0",
            "--log-format",
            "json",
            "--log-level",
            "INFO",
            "--access-log",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next_json = |lines: &mpsc::Receiver<String>, want: &dyn Fn(&Value) -> bool| -> Value {
        loop {
            let line = tokio::task::block_in_place(|| lines.recv_timeout(Duration::from_secs(30)))
                .expect("a log line");
            let parsed: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if want(&parsed) {
                return parsed;
            }
        }
    };
    next_json(&lines, &|v| {
        v["fields"]["message"] == "routing table published"
    });

    let (status, backend, _) = get(
        &client(),
        &format!("http://127.0.0.1:{http}/x"),
        "web.example.com",
    )
    .await;
    assert_eq!((status, backend.as_str()), (200, "web"));
    let access = next_json(&lines, &|v| v["target"] == "access");
    let fields = &access["fields"];
    assert_eq!(fields["status"], 200);
    assert_eq!(fields["host"], "web.example.com");
    assert_eq!(fields["path"], "/x");
    assert_eq!(fields["listener"], "http");
    assert_eq!(fields["backend"], "web_10850");
    assert_eq!(fields["endpoint"], format!("127.0.0.1:{}", web.port()));
    assert!(fields["duration_ms"].as_f64().is_some(), "{access}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn marathon_lb_level_names_are_accepted_and_bad_ones_named() {
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "routes",
            "--apps-file",
            "config/example-apps.json",
            "--log-level",
            "WARNING",
        ])
        .output()
        .unwrap();
    // Accepted: the table is printed (exit 1 only for the example's deliberate label error).
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("LISTENER"));
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args([
            "routes",
            "--apps-file",
            "config/example-apps.json",
            "--log-level",
            "loud",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a usage error: {output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("loud"));
}

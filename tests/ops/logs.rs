//! Logs from the real binary: JSON lines, the access log, Marathon-LB's level names.

use crate::support;

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use support::proxy::{app, client, free_port, get, Backend};

/// The balancer binary serving one app (`web.example.com` → `web`) from an apps file, with
/// `--access-log` and `--log-format format`; its stderr lines arrive on the receiver.
struct Running {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    http: u16,
    web: Backend,
    _dir: tempfile::TempDir,
}

impl Running {
    async fn start(format: &str) -> Running {
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
                format,
                "--log-level",
                "INFO",
                "--access-log",
            ])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = crate::support::process::stderr_lines(&mut child);
        let running = Running {
            child,
            lines,
            http,
            web,
            _dir: dir,
        };
        running.next_line(|line| line.contains("routing table published"));
        running
    }

    /// The next stderr line that satisfies `want`.
    fn next_line(&self, want: impl Fn(&str) -> bool) -> String {
        loop {
            let line =
                tokio::task::block_in_place(|| self.lines.recv_timeout(Duration::from_secs(30)))
                    .expect("a log line");
            if want(&line) {
                return line;
            }
        }
    }

    /// The next JSON access line's fields whose `field` is `value`.
    fn next_access(&self, field: &str, value: &str) -> Value {
        loop {
            let line = self.next_line(|_| true);
            let parsed: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if parsed["target"] == "access" && parsed["fields"][field] == value {
                return parsed["fields"].clone();
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The access line's fields in the order every line has them.
const ACCESS_FIELDS: [&str; 18] = [
    "client",
    "listener",
    "port",
    "method",
    "host",
    "path",
    "query",
    "protocol",
    "status",
    "grpc_status",
    "bytes_in",
    "bytes_out",
    "duration_ms",
    "response_ms",
    "backend",
    "endpoint",
    "referer",
    "user_agent",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_an_access_line_per_request() {
    let running = Running::start("json").await;
    let endpoint = format!("127.0.0.1:{}", running.web.port());

    // Plain HTTP/1.1 (the native engine).
    let response = client()
        .get(running.url("/x?a=1&b=%20"))
        .header("host", "web.example.com")
        .header("user-agent", "probe/1.0")
        .header("referer", "https://from.example/page")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent = response.bytes().await.unwrap().len();
    let fields = running.next_access("path", "/x");
    let keys: Vec<&str> = fields
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = ACCESS_FIELDS.to_vec();
    expected.sort_unstable();
    assert_eq!(keys, expected, "every field, always: {fields}");
    assert_eq!(fields["status"], 200);
    assert_eq!(fields["method"], "GET");
    assert_eq!(fields["host"], "web.example.com");
    assert_eq!(fields["query"], "a=1&b=%20");
    assert_eq!(fields["protocol"], "HTTP/1.1");
    assert_eq!(fields["listener"], "http");
    assert_eq!(fields["port"], running.http);
    assert_eq!(fields["backend"], "web_10850");
    assert_eq!(fields["endpoint"], endpoint);
    assert_eq!(fields["user_agent"], "probe/1.0");
    assert_eq!(fields["referer"], "https://from.example/page");
    assert_eq!(fields["bytes_in"], 0);
    assert_eq!(fields["bytes_out"], sent as u64);
    assert!(fields["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    let (duration, response_ms) = (&fields["duration_ms"], &fields["response_ms"]);
    assert!(
        duration.as_f64().unwrap() >= response_ms.as_f64().unwrap(),
        "{fields}"
    );

    // A streamed upload (hyper's engine): the body's bytes as they went upstream.
    let chunks = futures_util::stream::iter(
        (0..5).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; 1000]))),
    );
    let response = client()
        .post(running.url("/upload"))
        .header("host", "web.example.com")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent = response.bytes().await.unwrap().len();
    let fields = running.next_access("path", "/upload");
    assert_eq!(fields["method"], "POST");
    assert_eq!(fields["bytes_in"], 5000);
    assert_eq!(fields["bytes_out"], sent as u64);
    assert_eq!(fields["query"], Value::Null);
    assert_eq!(fields["referer"], Value::Null);

    // HTTP/2 (prior knowledge, on the plain port; routed by `:authority`).
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .resolve("web.example.com", ([127, 0, 0, 1], running.http).into())
        .build()
        .unwrap();
    let url = format!("http://web.example.com:{}/h2", running.http);
    let status = h2.get(url).send().await.unwrap().status();
    assert_eq!(status, 200);
    let fields = running.next_access("path", "/h2");
    assert_eq!(fields["protocol"], "HTTP/2.0");
}

/// Marathon-LB's HAProxy logs a request no frontend rule matched; so does this.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_find_no_route_are_in_the_access_log() {
    let running = Running::start("json").await;
    let response = client()
        .get(running.url("/nothing?q"))
        .header("host", "nobody.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let sent = response.bytes().await.unwrap().len();
    let fields = running.next_access("host", "nobody.example.com");
    assert_eq!(fields["status"], 503);
    assert_eq!(fields["listener"], "http");
    assert_eq!(fields["path"], "/nothing");
    assert_eq!(fields["query"], "q");
    assert_eq!(fields["backend"], Value::Null);
    assert_eq!(fields["endpoint"], Value::Null);
    assert_eq!(fields["bytes_out"], sent as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_access_lines_name_every_field_with_a_dash_for_none() {
    let running = Running::start("text").await;
    let response = client()
        .get(running.url("/x?a=1"))
        .header("host", "web.example.com")
        .header("user-agent", "say \"hi\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent = response.bytes().await.unwrap().len();
    let line = running.next_line(|line| line.contains(" access: "));
    let names: Vec<&str> = line
        .split(" access: ")
        .nth(1)
        .unwrap()
        .split(' ')
        .filter_map(|pair| pair.split_once('=').map(|(name, _)| name))
        .collect();
    assert_eq!(names, ACCESS_FIELDS, "{line}");
    for part in [
        &format!(" listener=http port={} method=GET ", running.http),
        " method=GET host=\"web.example.com\" path=\"/x\" query=\"a=1\" protocol=HTTP/1.1 status=200 grpc_status=- bytes_in=0 ",
        &format!(" bytes_out={sent} "),
        " backend=web_10850 ",
        " referer=- user_agent=\"say \\\"hi\\\"\"",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }

    let status = get(&client(), &running.url("/"), "nobody.example.com")
        .await
        .0;
    assert_eq!(status, 503);
    let line = running.next_line(|line| line.contains(" access: ") && line.contains("nobody"));
    assert!(line.contains(" status=503 "), "{line}");
    assert!(line.contains(" backend=- endpoint=- "), "{line}");
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

//! What the control plane logs, read as an operator reads it: the real binary's JSON lines on
//! stderr, against the in-process Marathon simulator. Label problems once per change
//! (`label_problems`), Marathon down and back (`marathon_down`), what each table changed
//! (`table_changes`).

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard::sim::simulator::{SimAuth, Simulator, SimulatorOptions};

mod label_problems;
mod marathon_down;
mod table_changes;

/// Guards against a hang; never a synchronisation point.
const GUARD: Duration = Duration::from_secs(30);

/// The balancer as a child process, its stderr read line by line as JSON.
struct Logged {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    seen: Vec<Value>,
    /// Lines before this one were handed out by [`Logged::next`].
    cursor: usize,
}

impl Logged {
    /// Serves Marathon at `url` with `args` added, logging JSON at `filter` (`RUST_LOG`).
    fn start(url: &str, args: &[&str], filter: &str) -> Logged {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["sse", "-m", url, "--bind-address", "127.0.0.1"])
            .args(["--http-port", "0", "--https-port", "0"])
            .args(["--app-id-port", "0", "--admin-port", "0"])
            .args(["--log-format", "json"])
            .args(args)
            .env("RUST_LOG", filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = crate::support::process::stderr_lines(&mut child);
        Logged {
            child,
            lines,
            seen: Vec::new(),
            cursor: 0,
        }
    }

    /// The next line after those already handed out that satisfies `want`, waiting for it.
    fn next(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        loop {
            while self.cursor < self.seen.len() {
                self.cursor += 1;
                if want(&self.seen[self.cursor - 1]) {
                    return self.seen[self.cursor - 1].clone();
                }
            }
            let line = tokio::task::block_in_place(|| self.lines.recv_timeout(GUARD))
                .unwrap_or_else(|e| panic!("never logged {what} ({e}); saw {:#?}", self.seen));
            let parsed: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            self.seen.push(parsed);
        }
    }

    /// Every line read so far that satisfies `want` (what has arrived is read first).
    fn all(&mut self, want: impl Fn(&Value) -> bool) -> Vec<Value> {
        while let Ok(line) = self.lines.try_recv() {
            if let Ok(parsed) = serde_json::from_str(&line) {
                self.seen.push(parsed);
            }
        }
        self.seen.iter().filter(|v| want(v)).cloned().collect()
    }

    /// The admin port's address, from the start line.
    fn admin(&mut self) -> String {
        let start = |v: &Value| message(v) == "switchyard serving";
        let line = match self.all(start).pop() {
            Some(line) => line,
            None => self.next("the start line", start),
        };
        line["fields"]["admin"].as_str().unwrap().to_owned()
    }

    /// The next "routing table published" line.
    fn published(&mut self) -> Value {
        self.next("a published table", |v| {
            message(v) == "routing table published"
        })
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or("")
}

fn level(line: &Value) -> &str {
    line["level"].as_str().unwrap_or("")
}

async fn simulator() -> Simulator {
    Simulator::start(SimulatorOptions {
        nodes: 1,
        auth: SimAuth::None,
        heartbeat: Duration::from_millis(100),
    })
    .await
    .unwrap()
}

/// An app in group `external` on `service_port`, with `labels` added.
fn app(id: &str, service_port: u16, labels: Value) -> Value {
    let mut all = json!({"HAPROXY_GROUP": "external"});
    if let (Some(all), Some(more)) = (all.as_object_mut(), labels.as_object()) {
        all.extend(more.clone());
    }
    json!({
        "id": id,
        "instances": 1,
        "labels": all,
        "portDefinitions": [{"port": service_port, "protocol": "tcp"}]
    })
}

/// `GET` on the admin port.
async fn admin_get(admin: &str, path: &str) -> String {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client.get(format!("http://{admin}{path}")).send().await;
    response.unwrap().text().await.unwrap()
}

//! The real binary serving an apps file on loopback, with chosen environment variables, its
//! JSON log lines read one by one: for what only a whole process shows (variables read at
//! start, log lines, signals).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use super::proxy::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

pub struct Process {
    pub child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    /// Every line read so far.
    seen: Vec<String>,
    pub http: SocketAddr,
    pub https: SocketAddr,
    pub admin: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Serves `apps` (a list of Marathon apps) with `vars` set and `RUST_LOG` unset, logging
    /// JSON at level info; `args` are added to the command line.
    pub fn start(apps: Value, vars: &[(&str, &str)], args: &[&str]) -> Process {
        let dir = tempfile::tempdir().unwrap();
        let apps_file = dir.path().join("apps.json");
        std::fs::write(&apps_file, json!({ "apps": apps }).to_string()).unwrap();
        let (http, https, admin) = (free_port(), free_port(), free_port());
        let mut command = Command::new(BIN);
        command
            .args(["--apps-file", apps_file.to_str().unwrap()])
            .args(["--bind-address", "127.0.0.1", "--apps-file-poll", "3600"])
            .args(["--http-port", &http.to_string()])
            .args(["--https-port", &https.to_string()])
            .args(["--app-id-port", &free_port().to_string()])
            .args(["--admin-port", &admin.to_string()])
            .args(["--log-format", "json", "--log-level", "info"])
            .args(args)
            .env_remove("RUST_LOG")
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        Process {
            child,
            lines,
            seen: Vec::new(),
            http: local(http),
            https: local(https),
            admin: local(admin),
            _dir: dir,
        }
    }

    /// The next log line whose `fields` satisfy `want`; `what` names it if it never comes.
    pub async fn next_log(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let wait = async {
            loop {
                let line = self.lines.recv().await.expect("the process is logging");
                self.seen.push(line.clone());
                let parsed: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                if want(&parsed["fields"]) {
                    return parsed;
                }
            }
        };
        // Guards against a hang; never a synchronisation point.
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .unwrap_or_else(|_| panic!("no log line {what} in:\n{}", self.seen.join("\n")))
    }

    /// The next line with this message.
    pub async fn next_message(&mut self, message: &str) -> Value {
        self.next_log(message, |f| f["message"] == message).await
    }

    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.admin);
        reqwest::get(url).await.unwrap().text().await.unwrap()
    }

    /// Sends signal `name` (e.g. `HUP`).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Stops the process and returns every line it wrote.
    pub async fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill().await;
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        self.seen
    }
}

/// The lines `child` writes to its piped stderr, read on a thread of their own as they come.
pub fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::{BufRead, BufReader};
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

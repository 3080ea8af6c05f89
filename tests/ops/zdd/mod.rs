//! `switchyard zdd` end to end: the Marathon simulator launching real backends for the apps
//! `zdd` posts (and health-checking them), the balancer binary following the simulator, and
//! `switchyard zdd` run as a process, its progress lines read as they come.

mod blue_green;
mod hook;
mod load;
mod resume;
mod split;
mod two_balancers;
mod unhealthy;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use switchyard::sim::demo::DemoLauncher;
use switchyard::sim::simulator::{Launcher, Simulator, SimulatorOptions};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::support::proxy::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
/// Guards against a hang; never a synchronisation point.
const GUARD: Duration = Duration::from_secs(120);
pub const VHOST: &str = "web.example.com";

/// A simulated Marathon whose API-created apps get real backends, with balancers following it.
pub struct Cluster {
    pub sim: Simulator,
    pub launcher: Arc<DemoLauncher>,
    pub service_port: u16,
    pub alt_port: u16,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Cluster {
        Cluster::start_nodes(1).await
    }

    /// With `nodes` Marathon nodes sharing one state.
    pub async fn start_nodes(nodes: usize) -> Cluster {
        let sim = Simulator::start(SimulatorOptions {
            nodes,
            heartbeat: Duration::from_millis(200),
            ..SimulatorOptions::default()
        })
        .await
        .unwrap();
        let launcher = DemoLauncher::new();
        let tasks: Arc<dyn Launcher> = Arc::new(launcher.clone());
        sim.run_tasks(tasks, Duration::from_millis(100));
        Cluster {
            sim,
            launcher,
            service_port: free_port(),
            alt_port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn marathon(&self) -> String {
        self.sim.urls()[0].clone()
    }

    /// The user's app definition of `/web`, version `version`, written to a file: the path.
    pub fn app_file(&self, instances: u32, version: u32, healthy: bool) -> String {
        let app = json!({
            "id": "/web",
            "instances": instances,
            "labels": {
                "HAPROXY_GROUP": "external",
                "HAPROXY_0_VHOST": VHOST,
                "HAPROXY_DEPLOYMENT_GROUP": "web",
                "HAPROXY_DEPLOYMENT_ALT_PORT": self.alt_port.to_string(),
            },
            "portDefinitions": [{"port": self.service_port, "protocol": "tcp"}],
            "healthChecks": [{"protocol": "HTTP", "path": "/health", "portIndex": 0,
                              "intervalSeconds": 1, "timeoutSeconds": 1,
                              "maxConsecutiveFailures": 3, "gracePeriodSeconds": 0}],
            // Answers take 50 ms: requests are in flight when a task is killed, unless drained.
            "env": {"DEMO_VERSION": version.to_string(), "DEMO_HEALTHY": healthy.to_string(),
                    "DEMO_DELAY_MS": "50"},
        });
        let path = self
            .dir
            .path()
            .join(format!("web-{version}-{healthy}.json"));
        std::fs::write(&path, app.to_string()).unwrap();
        path.display().to_string()
    }

    /// An app as the simulator serves it now, or `None`.
    pub fn app(&self, id: &str) -> Option<Value> {
        let apps = self.sim.apps_json();
        apps["apps"]
            .as_array()?
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
    }

    /// The ids of the apps of the simulator.
    pub fn app_ids(&self) -> Vec<String> {
        let apps = self.sim.apps_json();
        apps["apps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn task_ids(&self, id: &str) -> Vec<String> {
        self.app(id).map_or_else(Vec::new, |app| {
            app["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned())
                .collect()
        })
    }

    /// `switchyard zdd -j app -m <simulator> -l <each admin> -f <args>`, with `-s 0.1` unless
    /// `args` has a `-s`.
    pub fn zdd(&self, app: &str, balancers: &[&Balancer], args: &[&str]) -> Zdd {
        let mut command = Command::new(BIN);
        command.args(["zdd", "-j", app, "-m", &self.marathon(), "-f"]);
        if !args.contains(&"-s") {
            command.args(["-s", "0.1"]);
        }
        command.args(args).env_remove("RUST_LOG");
        for balancer in balancers {
            command.args(["-l", &format!("http://{}", balancer.admin)]);
        }
        Zdd::spawn(command)
    }

    pub async fn shutdown(self) {
        self.sim.shutdown().await;
        self.launcher.stop_all();
    }
}

/// The balancer binary following the simulator, bound to `bind` (127.0.0.1 or ::1).
pub struct Balancer {
    child: Child,
    pub http: String,
    pub admin: String,
}

impl Balancer {
    /// Follows the event stream (`sse`), or polls every `poll` seconds.
    pub async fn start(marathon: &str, bind: &str, poll: Option<&str>) -> Balancer {
        let mut command = Command::new(BIN);
        match poll {
            Some(seconds) => command.args(["poll", "--marathon-poll", seconds]),
            None => command.arg("sse"),
        };
        command
            .args([
                "-m",
                marathon,
                "--group",
                "external",
                "--bind-address",
                bind,
            ])
            .args([
                "--http-port",
                "0",
                "--https-port",
                "0",
                "--app-id-port",
                "0",
            ])
            .args(["--admin-port", "0", "--min-refresh-interval", "0"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let started = async {
            loop {
                let line = lines.next_line().await.unwrap().expect("the balancer runs");
                if line.contains("switchyard serving") {
                    return line;
                }
            }
        };
        let line = tokio::time::timeout(GUARD, started)
            .await
            .expect("the balancer starts");
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {line}"))
                .to_owned()
        };
        let (http, admin) = (field("http="), field("admin="));
        // Keep reading, so that the pipe never fills.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Balancer { child, http, admin }
    }

    /// The balancer's `/stats` endpoints of group `/web`: task id → (draining, in flight).
    pub async fn routed(&self) -> Vec<(String, bool)> {
        let stats: Value = reqwest::get(format!("http://{}/stats", self.admin))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats["backends"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["app_id"] == "/web")
            .flat_map(|b| b["endpoints"].as_array().unwrap().clone())
            .map(|e| {
                (
                    e["task_id"].as_str().unwrap().to_owned(),
                    e["draining"] == true,
                )
            })
            .collect()
    }

    /// Waits until the balancer routes `count` tasks of `/web`, none draining.
    pub async fn wait_routed(&self, count: usize) {
        let wait = async {
            loop {
                let routed = self.routed().await;
                if routed.len() == count && routed.iter().all(|(_, draining)| !draining) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(GUARD, wait)
            .await
            .unwrap_or_else(|_| panic!("the balancer never routed {count} tasks of /web"));
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A running `switchyard zdd`: its stdout lines as they come, its stderr kept.
pub struct Zdd {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    pub seen: Vec<String>,
    stderr: tokio::task::JoinHandle<String>,
}

impl Zdd {
    fn spawn(mut command: Command) -> Zdd {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut stderr = child.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
            text
        });
        Zdd {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// The next stdout line containing `needle`; `None` if the process ends first.
    pub async fn next_line(&mut self, needle: &str) -> Option<String> {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        };
        tokio::time::timeout(GUARD, wait)
            .await
            .unwrap_or_else(|_| panic!("zdd never printed `{needle}`: {:#?}", self.seen))
    }

    /// Sends a signal (`INT`, `TERM`).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit: its status code, every stdout line, and stderr.
    pub async fn finish(mut self) -> (i32, String, String) {
        let status = tokio::time::timeout(GUARD, self.child.wait())
            .await
            .expect("zdd exits")
            .unwrap();
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        let stderr = self.stderr.await.unwrap();
        (status.code().unwrap_or(-1), self.seen.join("\n"), stderr)
    }
}

/// Runs zdd to its end and insists on success.
pub async fn succeed(zdd: Zdd) -> String {
    let (code, stdout, stderr) = zdd.finish().await;
    assert_eq!(code, 0, "zdd failed:\n{stdout}\n{stderr}");
    stdout
}

/// The app id each of `n` requests to the balancer's vhost was answered by (a fresh
/// connection each).
pub async fn answers(balancer: &Balancer, n: usize) -> Vec<String> {
    let client = crate::support::proxy::fresh_client();
    let url = format!("http://{}/", balancer.http);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let response = client.get(&url).header("host", VHOST).send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_eq!(status, 200, "{body}");
        out.push(body.split_whitespace().next().unwrap_or("").to_owned());
    }
    out
}

//! The real binary against the Marathon simulator: Marathon-LB's Universe argument list runs
//! unchanged (its HAProxy-only `--haproxy-map` accepted with a notice), and a DC/OS service account from the environment logs in without its key or token
//! ever reaching the logs.

use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;
use switchyard::sim::simulator::{SimAuth, Simulator, SimulatorOptions, TaskSpec};

use crate::support;
use support::proxy::{client, get, Backend};

const KEY: &str = include_str!("../fixtures/service-account-key.pem");
const PUBLIC_KEY: &str = include_str!("../fixtures/service-account-pub.pem");
const GUARD: Duration = Duration::from_secs(30);

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(args)
            .args([
                "--http-port",
                "0",
                "--https-port",
                "0",
                "--app-id-port",
                "0",
            ])
            .args(["--admin-port", "0"])
            .args(["--bind-address", "127.0.0.1"])
            .envs(env.iter().copied())
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = crate::support::process::stderr_lines(&mut child);
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Blocks this thread only (the simulator runs on the runtime's other workers).
    fn wait_for(&mut self, needle: &str) -> String {
        tokio::task::block_in_place(|| self.wait_for_blocking(needle))
    }

    /// The first line, already seen or still to come, that contains `needle`.
    fn wait_for_blocking(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        loop {
            match self.lines.recv_timeout(GUARD) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(err) => panic!("never logged `{needle}`: {err}; saw {:#?}", self.seen),
            }
        }
    }

    /// The HTTP listener's address from the start-up line.
    fn http_addr(&mut self) -> String {
        let line = self.wait_for("switchyard serving");
        let field = line
            .split_whitespace()
            .find(|w| w.starts_with("http="))
            .unwrap();
        field.trim_start_matches("http=").to_owned()
    }

    /// The admin listener's address from the start-up line.
    fn admin_addr(&mut self) -> String {
        let line = self.wait_for("switchyard serving");
        let field = line
            .split_whitespace()
            .find(|w| w.starts_with("admin="))
            .unwrap();
        field.trim_start_matches("admin=").to_owned()
    }

    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.seen.extend(self.lines.try_iter());
        self.seen
    }
}

fn web_app() -> serde_json::Value {
    json!({
        "id": "/web",
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com"},
        "portDefinitions": [{"port": 10980, "protocol": "tcp"}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_lb_s_universe_arguments_run_unchanged() {
    let backend = Backend::start("web").await;
    let sim = Simulator::start(SimulatorOptions::default()).await.unwrap();
    sim.put_app(web_app());
    sim.start_task("/web", TaskSpec::running("127.0.0.1", vec![backend.port()]));
    let url = sim.urls()[0].clone();
    let mut running = Running::start(
        &[
            "sse",
            "-m",
            &url,
            "--health-check",
            "--haproxy-map",
            "--group",
            "external",
        ],
        &[],
    );
    let http = running.http_addr();
    let notice = running.wait_for("do nothing here");
    assert!(notice.contains("--haproxy-map"), "{notice}");
    running.wait_for("Marathon event stream connected");
    running.wait_for("routing table published");
    let c = client();
    let (status, backend, _) = get(&c, &format!("http://{http}/"), "web.example.com").await;
    assert_eq!((status, backend.as_str()), (200, "web"));
    running.stop();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_from_the_environment_logs_in_and_stays_secret() {
    let backend = Backend::start("web").await;
    let sim = Simulator::start(SimulatorOptions {
        auth: SimAuth::ServiceAccount {
            uid: "switchyard".into(),
            public_key_pem: PUBLIC_KEY.into(),
            token_lifetime: Duration::from_secs(3600),
        },
        ..SimulatorOptions::default()
    })
    .await
    .unwrap();
    sim.put_app(web_app());
    sim.start_task("/web", TaskSpec::running("127.0.0.1", vec![backend.port()]));
    let credential = json!({
        "scheme": "RS256", "uid": "switchyard", "private_key": KEY,
        "login_endpoint": sim.login_endpoint()
    })
    .to_string();
    let url = sim.urls()[0].clone();
    let mut running = Running::start(
        &["--marathon", &url],
        &[("DCOS_SERVICE_ACCOUNT_CREDENTIAL", &credential)],
    );
    let http = running.http_addr();
    running.wait_for("Marathon event stream connected");
    running.wait_for("routing table published");
    let c = client();
    let (status, backend, _) = get(&c, &format!("http://{http}/"), "web.example.com").await;
    assert_eq!((status, backend.as_str()), (200, "web"));
    assert_eq!(sim.stats().logins, 1);

    // Even at debug level, nothing secret is logged: not the key, not the token, not the
    // service-login JWT. Nor does any admin endpoint or error body show one.
    let token = sim.last_headers("/v2/apps").unwrap()["authorization"]
        .to_str()
        .unwrap()
        .trim_start_matches("token=")
        .to_owned();
    let admin = running.admin_addr();
    let shown = everything_shown(&admin, &http).await;
    let logs = running.stop().join("\n");
    let key_body = KEY.lines().nth(1).unwrap();
    for (what, text) in [("the logs", &logs), ("an endpoint", &shown)] {
        assert!(!text.contains(key_body), "the private key is in {what}");
        assert!(!text.contains(&token), "the token is in {what}");
        assert!(!text.contains("eyJ"), "a JWT is in {what}:\n{text}");
    }
    sim.shutdown().await;
}

/// Every admin endpoint's answer (the status page, its JSON, Marathon-LB's endpoints,
/// metrics) and the proxy's error bodies, as one text.
async fn everything_shown(admin: &str, http: &str) -> String {
    let c = client();
    let mut shown = String::new();
    for path in [
        "/",
        "/stats",
        "/routes",
        "/metrics",
        "/healthz",
        "/readyz",
        "/generation",
        "/_haproxy_getconfig",
        "/_haproxy_getvhostmap",
        "/_haproxy_getappmap",
        "/no-such-page",
    ] {
        let response = c.get(format!("http://{admin}{path}")).send().await.unwrap();
        shown += &response.text().await.unwrap();
    }
    for host in ["web.example.com", "unknown.example.com"] {
        let response = c
            .get(format!("http://{http}/"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        shown += &format!("{:?}", response.headers());
        shown += &response.text().await.unwrap();
    }
    // Per-backend series appear with their first request (after /metrics was read here); the
    // table's gauges are always there.
    assert!(
        shown.contains("switchyard_routing_table_generation"),
        "the endpoints answered: {shown}"
    );
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_credentials_from_a_file_never_show_in_logs_or_endpoints() {
    use base64::Engine as _;
    let backend = Backend::start("web").await;
    let password = "s3cret-Pa55word";
    let sim = Simulator::start(SimulatorOptions {
        auth: SimAuth::Basic {
            user: "lb".into(),
            password: password.into(),
        },
        ..SimulatorOptions::default()
    })
    .await
    .unwrap();
    sim.put_app(web_app());
    sim.start_task("/web", TaskSpec::running("127.0.0.1", vec![backend.port()]));
    let dir = tempfile::tempdir().unwrap();
    let url = sim.urls()[0].clone();
    let encoded =
        |pass: &str| base64::engine::general_purpose::STANDARD.encode(format!("lb:{pass}"));
    // A right password (served) and a wrong one (refused: errors on show).
    for (pass, served) in [(password, true), ("wr0ng-Pa55word", false)] {
        let file = dir.path().join(format!("credential-{served}"));
        std::fs::write(&file, format!("lb:{pass}\n")).unwrap();
        let mut running = Running::start(
            &[
                "--marathon",
                &url,
                "--marathon-auth-credential-file",
                file.to_str().unwrap(),
            ],
            &[],
        );
        let http = running.http_addr();
        let admin = running.admin_addr();
        if served {
            running.wait_for("routing table published");
        } else {
            running.wait_for("cannot read the apps");
        }
        let shown = everything_shown(&admin, &http).await;
        let logs = running.stop().join("\n");
        for (what, text) in [("the logs", &logs), ("an endpoint", &shown)] {
            assert!(!text.contains(pass), "the password is in {what}:\n{text}");
            assert!(
                !text.contains(&encoded(pass)),
                "the encoded credentials are in {what}"
            );
        }
    }
    sim.shutdown().await;
}

#[test]
fn a_broken_credential_is_refused_at_start_without_quoting_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["--marathon", "http://127.0.0.1:1"])
        .env(
            "DCOS_SERVICE_ACCOUNT_CREDENTIAL",
            r#"{"uid": "lb", "private_key": "-----BEGIN PRIVATE KEY-----\nsecretstuff\n", "login_endpoint": "http://x"}"#,
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("private_key"), "{stderr}");
    assert!(!stderr.contains("secretstuff"), "{stderr}");
}

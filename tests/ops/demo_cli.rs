//! `switchyard demo` as a user runs it: the real binary, real curl, and the routes changing
//! while the demo scales and redeploys Tweeter.

use crate::support;

use support::proxy::free_port;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Guards against a hang; never a synchronisation point.
const GUARD: Duration = Duration::from_secs(60);

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed (the README's test command installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stdout line read so far.
    seen: Vec<String>,
}

impl Demo {
    /// The next stdout line that contains `needle`.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + GUARD;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(err) => panic!("demo never printed `{needle}`: {err}; saw {:#?}", self.seen),
            }
        }
    }

    /// The generations the lines read so far explain, in the order printed
    /// (`→ generation 5: ...`, `→ generations 6–7: ...`).
    fn explained_generations(&self) -> Vec<u64> {
        let mut generations = Vec::new();
        for line in &self.seen {
            let Some(rest) = line
                .split_once("→ generations ")
                .or_else(|| line.split_once("→ generation "))
                .map(|(_, rest)| rest)
            else {
                continue;
            };
            let range = rest.split(':').next().unwrap();
            let (from, to) = range.split_once('–').unwrap_or((range, range));
            generations.extend(from.trim().parse::<u64>().unwrap()..=to.trim().parse().unwrap());
        }
        generations
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[test]
fn the_demo_serves_tweeter_hides_post_tweets_and_shows_changes_live() {
    let (http, https, app_id, admin, tweeter) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["demo", "--interval", "0.3"])
        .args(["--http-port", &http.to_string()])
        .args(["--https-port", &https.to_string()])
        .args(["--app-id-port", &app_id.to_string()])
        .args(["--admin-port", &admin.to_string()])
        .args(["--tweeter-port", &tweeter.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut demo = Demo {
        child,
        lines,
        seen: Vec::new(),
    };
    demo.wait_for("switchyard demo: ready");
    // The status page is named, and it is there.
    let status_page = demo.wait_for("status page");
    assert!(
        status_page.contains(&format!("http://127.0.0.1:{admin}/")),
        "{status_page}"
    );
    let page = curl(&[&format!("http://127.0.0.1:{admin}/")]);
    assert!(page.contains("<html"), "{page}");
    let marathon = demo.wait_for("Marathon simulator");
    let marathon = marathon.split_whitespace().last().unwrap().to_owned();
    let routes_command = demo.wait_for("routing table");

    // Exactly what the demo tells the user to run.
    let by_vhost = format!("http://tweeter.localhost:{http}/");
    let page = curl(&[&by_vhost]);
    assert!(page.starts_with("/tweeter (version 1)"), "{page}");
    let over_tls = curl(&["-k", &format!("https://tweeter.localhost:{https}/")]);
    assert!(over_tls.starts_with("/tweeter (version 1)"), "{over_tls}");
    let by_port = curl(&[&format!("http://127.0.0.1:{tweeter}/")]);
    assert!(by_port.starts_with("/tweeter (version 1)"), "{by_port}");
    let app_id_url = format!("http://127.0.0.1:{app_id}/");
    let by_app_id = curl(&["-H", "X-Marathon-App-Id: /tweeter", &app_id_url]);
    assert!(by_app_id.starts_with("/tweeter"), "{by_app_id}");
    let hidden = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "X-Marathon-App-Id: /post-tweets",
        &app_id_url,
    ]);
    assert_eq!(
        hidden, "503",
        "post-tweets has no HAPROXY_GROUP: not exposed"
    );
    // Asked of the balancer, not of port 10101 (another program may hold it).
    let routes = curl(&[&format!("http://127.0.0.1:{admin}/routes")]);
    let routes: serde_json::Value = serde_json::from_str(&routes).unwrap();
    let listeners: Vec<&str> = routes["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["listener"].as_str())
        .collect();
    assert!(
        listeners
            .iter()
            .any(|l| l.ends_with(&format!(":{tweeter}"))),
        "tweeter's service port is listed: {listeners:?}"
    );
    assert!(
        !listeners.iter().any(|l| l.ends_with(":10101")),
        "post-tweets' service port is not served: {listeners:?}"
    );

    // The three instances answer in turn.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        seen.insert(curl(&[&by_vhost]));
    }
    assert!(seen.len() >= 2, "round robin over the instances: {seen:?}");

    // The script runs: scale up, a health check passes, scale down, then a redeploy whose
    // new version the next request sees. Each step is followed by the tables it brought.
    demo.wait_for("is not healthy yet");
    demo.wait_for("passed its health check");
    demo.wait_for("scaled /tweeter down");
    demo.wait_for("redeployed /tweeter as version 2");
    let redeployed = demo.wait_for("→ generation");
    assert!(
        redeployed.contains("3 endpoints added, 3 endpoints removed"),
        "{redeployed}"
    );
    // Every table is explained, once, in order: none goes unmentioned between two steps.
    let explained = demo.explained_generations();
    let first = *explained.first().unwrap_or(&0);
    let expected: Vec<u64> = (first..first + explained.len() as u64).collect();
    assert_eq!(explained, expected, "{:#?}", demo.seen);
    assert_eq!(first, 1, "from the table served at start");
    let page = curl(&[&by_vhost]);
    assert!(page.starts_with("/tweeter (version 2)"), "{page}");
    let generation = curl(&[&format!("http://127.0.0.1:{admin}/generation")]);
    assert!(
        generation.trim().parse::<u64>().unwrap() >= 7,
        "{generation}"
    );
    // The routes command the demo prints runs as printed (the binary by its path: it is not
    // on the PATH after `cargo run`) and reads the simulator like a real Marathon.
    let mut words = routes_command
        .split_whitespace()
        .skip_while(|w| *w != "table")
        .skip(1);
    let program = words.next().unwrap();
    let args: Vec<&str> = words.collect();
    assert_eq!(args, ["routes", "--marathon", marathon.as_str()]);
    let routes = Command::new(program)
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("`{routes_command}` does not run: {e}"));
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(routes.contains("tweeter.localhost"), "{routes}");
    let post_tweets: Vec<_> = routes
        .lines()
        .filter(|l| l.contains("/post-tweets"))
        .collect();
    assert!(
        !post_tweets.is_empty() && post_tweets.iter().all(|l| l.contains("not_in_group")),
        "post-tweets is reported as not in the group, never routed: {routes}"
    );

    // The blue/green deploy of Tweeter's next version runs as printed, in one command.
    let zdd_command = demo
        .seen
        .iter()
        .find(|l| l.contains("blue/green deploy"))
        .cloned()
        .expect("the demo prints its zdd command");
    let mut words = zdd_command
        .split_whitespace()
        .skip_while(|w| *w != "deploy")
        .skip(1);
    let program = words.next().unwrap();
    let args: Vec<&str> = words.collect();
    let deployed = Command::new(program).args(&args).output().unwrap();
    assert!(
        deployed.status.success(),
        "`{zdd_command}`: {}\n{}",
        String::from_utf8_lossy(&deployed.stdout),
        String::from_utf8_lossy(&deployed.stderr)
    );
    let page = curl(&[&by_vhost]);
    assert!(page.starts_with("/tweeter-blue (version 2)"), "{page}");
    demo.wait_for("the demo stops its own changes");

    // SIGTERM stops it cleanly.
    let pid = demo.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut demo = demo;
    let status = demo.child.wait().unwrap();
    assert!(status.success(), "{status}");
}

//! Change → routed: how long after Marathon reports a change a request through the balancer
//! reaches the new task. The Marathon simulator holds 100, 1,000 or 2,500 apps (3 tasks each,
//! each with a vhost and a service port); the balancer follows its event stream in this process.
//! Each change moves one app to a new backend (start a task there, kill the old one); the clock
//! starts before the simulator records the change and stops when a request through the
//! balancer's HTTP port is first answered by the new backend.
//!
//! Situations: quiet (changes 0.55 s apart, nothing else happening), then at the largest size
//! the busy ones a real Marathon is in: changes back to back, back to back while other apps'
//! tasks emit 50 events a second, 10 events a second with changes 0.3 s apart, and a burst of
//! 1,000 events for other apps before each change. Each line gives the Marathon reads per
//! change (full `/v2/apps`, and single apps), the load the balancer puts on Marathon.
//!
//! Marathon (the simulator) and the tasks' backends run on a runtime of their own, as the
//! separate processes they are; each change moves the app to a backend of its own, so that a
//! request answered by a task an earlier change replaced is never taken for the new one.
//!
//! `cargo bench --bench reconfigure` (`-- 100 1000` to choose the sizes, `--changes N`,
//! `--only burst` for the situations whose name holds a word).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchyard::marathon::MarathonConfig;
use switchyard::model::ModelOptions;
use switchyard::proxy::ProxyConfig;
use switchyard::routing::BuildOptions;
use switchyard::serve::{self, BoundListeners, MarathonSource, ServeOptions, Source};
use switchyard::sim::demo::DemoBackend;
use switchyard::sim::simulator::{Simulator, SimulatorOptions, TaskSpec};
use tokio::net::TcpListener;
use tokio::runtime::Handle;

#[global_allocator]
static GLOBAL: switchyard::alloc::Allocator = switchyard::alloc::Allocator;

const MEASURED_HOST: &str = "app-0.bench.example.com";

fn app(i: usize) -> Value {
    json!({
        "id": format!("/bench/app-{i:05}"),
        "instances": 3,
        "cpus": 0.1, "mem": 64,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": format!("app-{i}.bench.example.com")},
        "portDefinitions": [{"port": 12000 + i, "protocol": "tcp", "name": "http"}],
        // Marathon reports health only for apps with checks, and the balancer cannot repeat a
        // command check: the health events are what routes these tasks.
        "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}],
        "env": {"VERSION": "1"}
    })
}

fn main() {
    let mut sizes = Vec::new();
    let mut changes = 100;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--changes" => changes = args.next().and_then(|n| n.parse().ok()).unwrap_or(100),
            "--only" => only = args.next(),
            "--bench" => {}
            other => {
                if let Ok(n) = other.parse() {
                    sizes.push(n)
                }
            }
        }
    }
    if sizes.is_empty() {
        sizes = vec![100, 1000, 2500];
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let marathon = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("marathon")
        .enable_all()
        .build()
        .expect("runtime");
    println!("change → routed, {changes} changes per situation (event stream, gzip)");
    println!(
        "{:<32} {:>6} {:>8} {:>8} {:>8} {:>8} {:>11} {:>11}",
        "situation", "apps", "p50 ms", "p90 ms", "p99 ms", "max ms", "full/chg", "app/chg"
    );
    let largest = sizes.iter().copied().max().unwrap_or(2500);
    let mut situations: Vec<(usize, Situation)> =
        sizes.iter().map(|&n| (n, Situation::QUIET)).collect();
    situations.extend(Situation::BUSY.iter().map(|s| (largest, *s)));
    if let Some(word) = &only {
        situations.retain(|(_, s)| s.name.contains(word.as_str()));
    }
    for (size, situation) in situations {
        let (mut samples, reads) =
            runtime.block_on(measure(marathon.handle(), size, changes, situation));
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i].as_secs_f64() * 1e3
        };
        let per_change = |n: u64| n as f64 / samples.len() as f64;
        println!(
            "{:<32} {size:>6} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>11.2} {:>11.2}",
            situation.name,
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0),
            per_change(reads.0),
            per_change(reads.1),
        );
    }
}

/// How changes come, and what else Marathon says meanwhile.
#[derive(Debug, Clone, Copy)]
struct Situation {
    name: &'static str,
    /// Between one change routed and the next: `None` back to back.
    spacing: Option<Duration>,
    /// Events a second for other apps' tasks, all the time.
    background: Option<u32>,
    /// Events for other apps' tasks just before each change.
    burst: usize,
}

impl Situation {
    /// Spaced so that each change is the first after a quiet spell, as a deployment is.
    const QUIET: Situation = Situation {
        name: "quiet, 0.55 s apart",
        spacing: Some(Duration::from_millis(550)),
        background: None,
        burst: 0,
    };
    const BUSY: [Situation; 4] = [
        Situation {
            name: "back to back",
            spacing: None,
            background: None,
            burst: 0,
        },
        Situation {
            name: "back to back, 50 events/s",
            spacing: None,
            background: Some(50),
            burst: 0,
        },
        Situation {
            name: "0.3 s apart, 10 events/s",
            spacing: Some(Duration::from_millis(300)),
            background: Some(10),
            burst: 0,
        },
        Situation {
            name: "a 1,000-event burst before each",
            spacing: Some(Duration::from_millis(300)),
            background: None,
            burst: 1000,
        },
    ];
}

/// Flips the health of other apps' tasks until stopped: `rate` events a second, each flip two
/// (`health_status_changed_event`, `instance_health_changed_event`) as Marathon 1.4+ sends.
fn background_events(
    sim: &Simulator,
    others: Vec<String>,
    rate: u32,
) -> tokio_util::sync::CancellationToken {
    let stop = tokio_util::sync::CancellationToken::new();
    let (sim, token) = (sim.clone(), stop.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2) / rate);
        let mut flips = 0usize;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = token.cancelled() => return,
            }
            let task = &others[flips % others.len()];
            sim.set_task_health(task, !(flips / others.len()).is_multiple_of(2));
            flips += 1;
        }
    });
    stop
}

/// A backend for one task, on Marathon's runtime.
async fn backend(marathon: &Handle) -> DemoBackend {
    marathon
        .spawn(DemoBackend::start("bench", 1))
        .await
        .expect("join")
        .expect("backend")
}

async fn measure(
    marathon: &Handle,
    size: usize,
    changes: usize,
    situation: Situation,
) -> (Vec<Duration>, (u64, u64)) {
    let sim = marathon
        .spawn(Simulator::start(SimulatorOptions::default()))
        .await
        .expect("join")
        .expect("simulator");
    for i in 0..size {
        let mut definition = app(i);
        if i == 0 {
            // The measured app: its new task is routed from its status event alone.
            definition
                .as_object_mut()
                .expect("object")
                .remove("healthChecks");
        }
        sim.put_app(definition);
        for t in 0..3u16 {
            let host = format!("127.0.{}.{}", t + 1, (i % 250) + 1);
            let task = sim
                .start_task(
                    &format!("/bench/app-{i:05}"),
                    TaskSpec::running(host, vec![20000 + (i % 40000) as u16]),
                )
                .expect("task");
            sim.set_task_health(&task, true);
        }
    }
    // The measured app: one task, on a backend of its own.
    let mut serving = backend(marathon).await;
    let measured = "/bench/app-00000";
    let mut tasks: Vec<String> = sim.apps_json()["apps"][0]["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .collect();
    for task in tasks.drain(..) {
        sim.kill_task(&task);
    }
    let mut current = sim
        .start_task(
            measured,
            TaskSpec::running("127.0.0.1", vec![serving.addr.port()]),
        )
        .expect("task");

    let bind = || async { TcpListener::bind("127.0.0.1:0").await.expect("bind") };
    let listeners = BoundListeners {
        http: Some(bind().await),
        https: Some(bind().await),
        app_id: bind().await,
        admin: bind().await,
    };
    let source = MarathonSource::new(MarathonConfig {
        urls: sim.urls(),
        ..MarathonConfig::default()
    });
    let options = ServeOptions {
        model: ModelOptions::default(),
        build: BuildOptions::default(),
        source: Source::Marathon(source),
        poll_interval: Duration::from_secs(3600),
        bind_address: "127.0.0.1".parse().expect("ip"),
        proxy: ProxyConfig::default(),
        ssl_certs: Vec::new(),
        ssl_cert_vars: Vec::new(),
        cert_poll_interval: Duration::from_secs(3600),
    };
    let handle = serve::start(options, listeners).expect("serve");
    handle.wait_generation(1).await;
    handle.wait_stream(|s| s.connected.is_some()).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()
        .expect("client");
    let url = format!("http://{}/", handle.http_addr.unwrap());
    let answered_by = |port: u16| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let body = client
                .get(&url)
                .header("host", MEASURED_HOST)
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            Some(body.contains(&format!(":{port}")))
        }
    };
    // Other apps' tasks, for the events that are not the measured change.
    let others: Vec<String> = sim.apps_json()["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .skip(1)
        .filter_map(|a| a["tasks"][0]["id"].as_str().map(str::to_owned))
        .collect();
    let background = situation
        .background
        .map(|rate| background_events(&sim, others.clone(), rate));
    let before = sim.stats();
    let mut samples = Vec::with_capacity(changes);
    let mut flips = 0usize;
    for change in 0..changes {
        let next = backend(marathon).await;
        if let Some(spacing) = situation.spacing {
            tokio::time::sleep(spacing).await;
        }
        // Each flip is two events: `health_status_changed_event`, `instance_health_changed_event`.
        for _ in 0..situation.burst / 2 {
            let task = &others[flips % others.len()];
            sim.set_task_health(task, !(flips / others.len()).is_multiple_of(2));
            flips += 1;
        }
        let started = Instant::now();
        let task = sim
            .start_task(
                measured,
                TaskSpec::running("127.0.0.1", vec![next.addr.port()]),
            )
            .expect("task");
        sim.kill_task(&current);
        current = task;
        let replaced = std::mem::replace(&mut serving, next);
        let next = &serving;
        if std::env::var_os("RECONFIGURE_DEBUG").is_some() {
            let g = handle.generation();
            handle.wait_generation(g + 1).await;
            eprintln!(
                "change {change}: generation {} after {:?}",
                g + 1,
                started.elapsed()
            );
        }
        loop {
            if answered_by(next.addr.port()).await == Some(true) {
                break;
            }
            // Polls the proxy without starving the control plane of the second core.
            tokio::time::sleep(Duration::from_micros(200)).await;
            if started.elapsed() > Duration::from_secs(30) {
                panic!("change {change} was not routed within 30 s");
            }
        }
        samples.push(started.elapsed());
        replaced.stop();
        if std::env::var_os("RECONFIGURE_DEBUG").is_some() {
            eprintln!(
                "change {change}: routed {:?}, generation {}",
                started.elapsed(),
                handle.generation()
            );
        }
    }
    if let Some(stop) = background {
        stop.cancel();
    }
    let after = sim.stats();
    let reads = (
        after.apps_requests - before.apps_requests,
        after.app_requests - before.app_requests,
    );
    handle.shutdown().await;
    serving.stop();
    marathon.spawn(sim.shutdown()).await.expect("join");
    (samples, reads)
}

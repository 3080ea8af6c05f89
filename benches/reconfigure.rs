//! Change → routed: how long after Marathon reports a change a request through the balancer
//! reaches the new task. The Marathon simulator holds 100, 1,000 or 2,500 apps (3 tasks each,
//! each with a vhost and a service port); the balancer follows its event stream in this process.
//! Each change moves one app to a new backend (start a task there, kill the old one); the clock
//! starts before the simulator records the change and stops when a request through the
//! balancer's HTTP port is first answered by the new backend. Changes are spaced past the
//! `--min-refresh-interval` so each is the first after a quiet spell, as a deployment is.
//!
//! `cargo bench --bench reconfigure` (`-- 100 1000` to choose the sizes, `--changes N`).

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
        "env": {"VERSION": "1"}
    })
}

fn main() {
    let mut sizes = Vec::new();
    let mut changes = 100;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--changes" => changes = args.next().and_then(|n| n.parse().ok()).unwrap_or(100),
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
    println!("change → routed, {changes} changes per size (event stream, gzip, full refetch)");
    println!(
        "{:>6} {:>9} {:>9} {:>9} {:>9}",
        "apps", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for size in sizes {
        let mut samples = runtime.block_on(measure(size, changes));
        samples.sort_unstable();
        let at = |q: f64| {
            let i = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[i].as_secs_f64() * 1e3
        };
        println!(
            "{size:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0)
        );
    }
}

async fn measure(size: usize, changes: usize) -> Vec<Duration> {
    let sim = Simulator::start(SimulatorOptions::default())
        .await
        .expect("simulator");
    for i in 0..size {
        sim.put_app(app(i));
        for t in 0..3u16 {
            let host = format!("127.0.{}.{}", t + 1, (i % 250) + 1);
            sim.start_task(
                &format!("/bench/app-{i:05}"),
                TaskSpec::running(host, vec![20000 + (i % 40000) as u16]),
            );
        }
    }
    // The measured app: one task, on one of two real backends in turn.
    let backends = [
        DemoBackend::start("a", 1).await.expect("backend"),
        DemoBackend::start("b", 1).await.expect("backend"),
    ];
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
            TaskSpec::running("127.0.0.1", vec![backends[0].addr.port()]),
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
    // A change costs up to four refetches; 0.55 s later the limiter has refilled at least two,
    // so each change's first refetch starts at once, as after any quiet spell.
    let spacing = source.min_refresh_interval * 2 + Duration::from_millis(50);
    let options = ServeOptions {
        model: ModelOptions::default(),
        build: BuildOptions::default(),
        source: Source::Marathon(source),
        poll_interval: Duration::from_secs(3600),
        bind_address: "127.0.0.1".parse().expect("ip"),
        proxy: ProxyConfig::default(),
        ssl_certs: Vec::new(),
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
    let mut samples = Vec::with_capacity(changes);
    for change in 0..changes {
        let next = &backends[(change + 1) % 2];
        tokio::time::sleep(spacing).await;
        let started = Instant::now();
        let task = sim
            .start_task(
                measured,
                TaskSpec::running("127.0.0.1", vec![next.addr.port()]),
            )
            .expect("task");
        sim.kill_task(&current);
        current = task;
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
        if std::env::var_os("RECONFIGURE_DEBUG").is_some() {
            eprintln!(
                "change {change}: routed {:?}, generation {}",
                started.elapsed(),
                handle.generation()
            );
        }
    }
    handle.shutdown().await;
    for backend in &backends {
        backend.stop();
    }
    sim.shutdown().await;
    samples
}

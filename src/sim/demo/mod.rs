//! `switchyard demo`: the whole product on one machine with no setup. A Marathon simulator holds
//! the Tweeter tutorial's apps (Tweeter: 3 instances, service port 10000, group `external`, a
//! vhost; post-tweets: no labels, so never exposed), real backends answer for the tasks, and the
//! balancer follows the simulator's event stream. Every few seconds the demo scales, fails a
//! health check or redeploys Tweeter, and prints what it did, then each routing table it
//! brought and what that changed, so a user watches routes change.
//!
//! Tweeter is a zero-downtime deployment group: the demo prints a `switchyard zdd` command that
//! deploys its next version blue/green through the simulator's API (the simulator launches
//! backends for it); the demo's own changes stop once anything changes Marathon that way.

mod backend;
mod launcher;
mod tables;
mod zdd;

use std::collections::{BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::{json, Value};

pub use backend::DemoBackend;
pub use launcher::DemoLauncher;

use crate::marathon::MarathonConfig;
use crate::model::ModelOptions;
use crate::proxy::ProxyConfig;
use crate::routing::BuildOptions;
use crate::serve::{self, BoundListeners, MarathonSource, ServeOptions, Source};
use crate::sim::simulator::{SimAuth, Simulator, SimulatorOptions, TaskSpec};

/// Where the demo listens and how fast it changes things.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub bind_address: IpAddr,
    pub http_port: u16,
    pub https_port: u16,
    pub app_id_port: u16,
    pub admin_port: u16,
    /// Tweeter's service port (the tutorial's 10000).
    pub tweeter_port: u16,
    /// Time between two changes.
    pub interval: Duration,
}

pub const TWEETER: &str = "/tweeter";
pub const TWEETER_VHOST: &str = "tweeter.localhost";

/// Runs until `stop` resolves.
pub async fn run(
    options: DemoOptions,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    let sim = Simulator::start(SimulatorOptions {
        nodes: 1,
        auth: SimAuth::None,
        ..SimulatorOptions::default()
    })
    .await
    .map_err(|e| format!("cannot start the Marathon simulator: {e}"))?;
    // Backends for the apps changed through the API (`switchyard zdd`), checked every 500 ms.
    let launcher = DemoLauncher::new();
    let tasks: std::sync::Arc<dyn crate::sim::simulator::Launcher> =
        std::sync::Arc::new(launcher.clone());
    sim.run_tasks(tasks, Duration::from_millis(500));
    let mut tweeter = Tweeter::new(sim.clone(), options.tweeter_port);
    tweeter.deploy(3).await?;
    let post_tweets = DemoBackend::start("post-tweets", 1)
        .await
        .map_err(|e| e.to_string())?;
    sim.put_app(post_tweets_app());
    sim.start_task(
        "/post-tweets",
        TaskSpec::running("127.0.0.1", vec![post_tweets.addr.port()]),
    );

    let bind = |port: u16| {
        let ip = options.bind_address;
        async move {
            tokio::net::TcpListener::bind((ip, port))
                .await
                .map_err(|e| format!("cannot bind {ip}:{port}: {e}"))
        }
    };
    let listeners = BoundListeners {
        http: Some(bind(options.http_port).await?),
        https: Some(bind(options.https_port).await?),
        app_id: bind(options.app_id_port).await?,
        admin: bind(options.admin_port).await?,
    };
    let serve_options = ServeOptions {
        model: ModelOptions::default(),
        build: BuildOptions::default(),
        source: Source::Marathon(MarathonSource::new(MarathonConfig {
            urls: sim.urls(),
            ..MarathonConfig::default()
        })),
        poll_interval: Duration::from_secs(5),
        bind_address: options.bind_address,
        proxy: ProxyConfig::default(),
        ssl_certs: Vec::new(),
        ssl_cert_vars: Vec::new(),
        cert_poll_interval: Duration::from_secs(5),
    };
    let handle = serve::start(serve_options, listeners).map_err(|e| e.to_string())?;
    handle.wait_generation(1).await;
    let http = handle.http_addr.ok_or("the HTTP port is not bound")?;
    let admin = handle.admin_addr;
    let service = std::net::SocketAddr::new(options.bind_address, options.tweeter_port);
    // The binary running now: `switchyard` is not on the PATH after `cargo run`.
    let exe = std::env::current_exe().map_or_else(
        |_| "switchyard".to_owned(),
        |path| path.display().to_string(),
    );
    let next_version = zdd::write_next_version(tweeter_app(options.tweeter_port, 2, 3))
        .map_err(|e| format!("cannot write Tweeter's next version: {e}"))?;
    let zdd_command = zdd::command(
        &exe,
        &next_version,
        &sim.urls().join(" "),
        &admin.to_string(),
    );
    println!(
        "switchyard demo: ready\n\
         \n  status page          http://{admin}/    (routes, endpoints, events, problems, live)\n  \
         Marathon simulator   {marathon}\n  \
         Tweeter by vhost     curl http://{TWEETER_VHOST}:{http_port}/\n  \
         Tweeter over HTTPS   curl -k https://{TWEETER_VHOST}:{https_port}/    (a self-signed certificate)\n  \
         Tweeter by port      curl http://{service}/\n  \
         Tweeter by app id    curl -H 'X-Marathon-App-Id: {TWEETER}' http://{app_id}/\n  \
         post-tweets          not exposed (no HAPROXY_GROUP): curl -H 'X-Marathon-App-Id: /post-tweets' http://{app_id}/ gets 503\n  \
         routing table        {exe} routes --marathon {marathon}\n  \
         admin                curl http://{admin}/generation    (also /routes, /stats, /_haproxy_health_check)\n  \
         blue/green deploy    {zdd_command}\n                       (Tweeter version 2; the demo's own changes stop then)\n\n\
         Every {every:?} the demo changes Tweeter and prints what it did, then each routing table\n\
         generation it brought and what that changed. Ctrl-C stops.\n",
        marathon = sim.urls().join(" "),
        http_port = http.port(),
        https_port = handle.https_addr.map_or(0, |a| a.port()),
        app_id = handle.app_id_addr,
        every = options.interval,
    );

    let mut explained = tables::Explained::new();
    if let Some(line) = explained.next_line(&handle) {
        println!("{line}");
    }
    let changes = async {
        let mut paused = false;
        let mut ticker = tokio::time::interval(options.interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick(), if !paused => {
                    if sim.api_writes() > 0 {
                        paused = true;
                        println!(
                            "[demo] Marathon is being changed through its API (switchyard zdd?): \
                             the demo stops its own changes; tables are still explained"
                        );
                        continue;
                    }
                    match tweeter.next_change().await {
                        Ok(what) => {
                            println!("[demo] {what}");
                            // Every event of the change applied, then its tables explained.
                            let guard = options.interval.max(Duration::from_secs(5));
                            tables::routed(&handle, TWEETER, &tweeter.routed(), guard).await;
                            if let Some(line) = explained.next_line(&handle) {
                                println!("{line}");
                            }
                        }
                        Err(err) => println!("[demo] {err}"),
                    }
                }
                // A table published after its change's line: explained as it comes.
                _ = handle.wait_generation(explained.generation() + 1) => {
                    if let Some(line) = explained.next_line(&handle) {
                        println!("{line}");
                    }
                }
            }
        }
    };
    tokio::select! {
        () = stop => {}
        () = changes => {}
    }
    handle.shutdown().await;
    tweeter.stop_all();
    launcher.stop_all();
    post_tweets.stop();
    sim.shutdown().await;
    Ok(())
}

/// Tweeter's tasks and the script of changes the demo plays in a loop.
struct Tweeter {
    sim: Simulator,
    service_port: u16,
    version: u32,
    /// Oldest first.
    tasks: VecDeque<(String, DemoBackend)>,
    /// A task started but not yet reported healthy (so not routed).
    starting: Option<String>,
    step: usize,
}

impl Tweeter {
    fn new(sim: Simulator, service_port: u16) -> Tweeter {
        Tweeter {
            sim,
            service_port,
            version: 0,
            tasks: VecDeque::new(),
            starting: None,
            step: 0,
        }
    }

    /// Puts a new version of the app and replaces every task with `instances` healthy ones.
    async fn deploy(&mut self, instances: usize) -> Result<(), String> {
        self.version += 1;
        self.sim
            .put_app(tweeter_app(self.service_port, self.version, instances));
        let old: Vec<_> = self.tasks.drain(..).collect();
        for _ in 0..instances {
            let id = self.start_task().await?;
            self.sim.set_task_health(&id, true);
        }
        for (id, backend) in old {
            self.sim.kill_task(&id);
            backend.stop();
        }
        Ok(())
    }

    async fn start_task(&mut self) -> Result<String, String> {
        let backend = DemoBackend::start(TWEETER, self.version)
            .await
            .map_err(|e| format!("cannot start a backend: {e}"))?;
        let id = self
            .sim
            .start_task(
                TWEETER,
                TaskSpec::running("127.0.0.1", vec![backend.addr.port()]),
            )
            .ok_or("the simulator lost /tweeter")?;
        self.tasks.push_back((id.clone(), backend));
        Ok(id)
    }

    /// Sets the app's `instances`, as a scaling in Marathon does: the balancer's merge of a
    /// deployment group (`switchyard zdd`) counts on it matching the tasks.
    fn scale(&self, instances: usize) {
        self.sim
            .put_app(tweeter_app(self.service_port, self.version, instances));
    }

    /// Plays the next change and says what it was.
    async fn next_change(&mut self) -> Result<String, String> {
        const SCRIPT: usize = 6;
        let step = self.step % SCRIPT;
        self.step += 1;
        match step {
            0 | 2 => {
                self.scale(self.tasks.len() + 1);
                let id = self.start_task().await?;
                self.starting = Some(id.clone());
                Ok(format!(
                    "scaled {TWEETER} to {} tasks; {id} is not healthy yet, so not routed",
                    self.tasks.len()
                ))
            }
            1 | 3 => {
                let id = self.starting.take().ok_or("no task is starting")?;
                self.sim.set_task_health(&id, true);
                Ok(format!("{id} passed its health check: now routed"))
            }
            4 => {
                let (id, backend) = self.tasks.pop_front().ok_or("no task to kill")?;
                self.sim.kill_task(&id);
                backend.stop();
                let (id2, backend2) = self.tasks.pop_front().ok_or("no task to kill")?;
                self.sim.kill_task(&id2);
                backend2.stop();
                self.scale(self.tasks.len());
                Ok(format!(
                    "scaled {TWEETER} down to {}: killed {id} and {id2}",
                    self.tasks.len()
                ))
            }
            _ => {
                self.deploy(3).await?;
                Ok(format!(
                    "redeployed {TWEETER} as version {} with 3 new tasks",
                    self.version
                ))
            }
        }
    }

    /// The addresses Tweeter's port should route: every task but the one not healthy yet.
    fn routed(&self) -> BTreeSet<SocketAddr> {
        let starting = self.starting.as_deref();
        self.tasks
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != starting)
            .map(|(_, backend)| backend.addr)
            .collect()
    }

    fn stop_all(&self) {
        for (_, backend) in &self.tasks {
            backend.stop();
        }
    }
}

/// The Tweeter tutorial's app definitions (spec §5), kept in `config/demo-apps.json`.
const DEMO_APPS: &str = include_str!("../../../config/demo-apps.json");

/// The definition of app `id` from the demo apps.
fn demo_app(id: &str) -> Value {
    let apps: Value = serde_json::from_str(DEMO_APPS).unwrap_or_default();
    apps["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|app| app["id"] == id))
        .cloned()
        .unwrap_or_else(|| json!({ "id": id }))
}

/// Tweeter as Marathon ≥1.5 returns it (spec §5.1, plus a vhost), on the demo's service port,
/// at a version the demo counts up.
fn tweeter_app(service_port: u16, version: u32, instances: usize) -> Value {
    let mut app = demo_app(TWEETER);
    app["instances"] = json!(instances);
    app["env"] = json!({"DEMO_VERSION": version.to_string()});
    app["container"]["portMappings"][0]["servicePort"] = json!(service_port);
    zdd::label(&mut app, service_port);
    app
}

/// post-tweets (spec §5.2): no labels, so the balancer must not expose it.
fn post_tweets_app() -> Value {
    demo_app("/post-tweets")
}

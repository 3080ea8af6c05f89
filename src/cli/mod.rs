//! The command line. Flag names follow Marathon-LB's where they mean the same thing.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::model::{Groups, ModelOptions};
use crate::routing::{BalancerPorts, BuildOptions, DEFAULT_PORTS};

pub mod config;
mod limit_flags;
mod marathon_flags;
mod routes;
mod serve;

pub use limit_flags::LimitFlags;
pub use marathon_flags::{MarathonAccess, MarathonFollow, SourceMode};
pub use routes::routes;
pub use serve::serve;

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "A Layer-7 load balancer for DC/OS that replaces Marathon-LB",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Log format: `text` (one line per event) or `json` (one object per line).
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub log_format: LogFormat,
    /// Least severe level logged (Marathon-LB's names are accepted in any case:
    /// DEBUG, INFO, WARNING, ERROR, CRITICAL). `RUST_LOG`, when set, wins.
    #[arg(long, default_value = "info", global = true, value_parser = parse_log_level)]
    pub log_level: tracing::Level,
    /// A TOML file of options (keys are option names: `http-port = 80`); flags and
    /// `SWITCHYARD_*` environment variables win over it. See config/switchyard.toml.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Without a subcommand: run the balancer.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn parse_log_level(value: &str) -> Result<tracing::Level, String> {
    match value.to_ascii_lowercase().as_str() {
        "trace" => Ok(tracing::Level::TRACE),
        "debug" => Ok(tracing::Level::DEBUG),
        "info" => Ok(tracing::Level::INFO),
        "warn" | "warning" => Ok(tracing::Level::WARN),
        "error" | "critical" | "fatal" => Ok(tracing::Level::ERROR),
        other => Err(format!(
            "`{other}` is not one of trace, debug, info, warning, error"
        )),
    }
}

/// Serve mode (no subcommand).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Marathon-LB's first word: `sse` (follow the event stream, the default) or `poll`.
    #[arg(value_enum, value_name = "sse|poll")]
    pub mode: Option<SourceMode>,
    /// A `/v2/apps?embed=apps.tasks` JSON document to serve instead of Marathon; re-read when
    /// it changes and on SIGHUP.
    #[arg(long, value_name = "FILE", conflicts_with = "marathon")]
    pub apps_file: Option<PathBuf>,
    #[command(flatten)]
    pub access: MarathonAccess,
    #[command(flatten)]
    pub follow: MarathonFollow,
    /// Worker threads for the proxy (HAProxy's `nbthread`); 0: one per CPU this process may
    /// run on. 1 runs everything on one thread with no cross-thread wake-ups.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Address the listeners bind to.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_address: std::net::IpAddr,
    /// Do not bind the HTTP and HTTPS ports: serve service ports (and the app-id port) only.
    #[arg(long)]
    pub dont_bind_http_https: bool,
    /// Address the admin port binds to (default: --bind-address), e.g. a private interface.
    #[arg(long)]
    pub admin_bind_address: Option<std::net::IpAddr>,
    /// Seconds between checks of the apps file for changes.
    #[arg(long, default_value_t = 1.0)]
    pub apps_file_poll: f64,
    /// TLS certificates for the HTTPS port: a comma-separated list of PEM files (chain and
    /// private key in one file) and directories of them; chosen by SNI, the first is the
    /// default. Marathon-LB's HAPROXY_SSL_CERT (PEM text) and HAPROXY_SSL_CERT0..100 variables
    /// are served after these. Without any, a self-signed certificate is generated at start.
    #[arg(long, value_name = "PATHS", value_delimiter = ',')]
    pub ssl_certs: Vec<PathBuf>,
    /// Seconds between checks of the certificate files for changes (SIGHUP also reloads).
    #[arg(long, default_value_t = 2.0)]
    pub ssl_certs_poll: f64,
    #[command(flatten)]
    pub routing: RoutingFlags,
    #[command(flatten)]
    pub limits: LimitFlags,
    #[command(flatten)]
    pub haproxy_only: HaproxyOnlyFlags,
}

/// Marathon-LB flags that configure HAProxy: accepted so that its argument lists run
/// unchanged, and reported once at start as doing nothing here.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Marathon-LB flags accepted with no effect (they configure HAProxy)")]
pub struct HaproxyOnlyFlags {
    #[arg(long)]
    pub haproxy_map: bool,
    #[arg(long, value_name = "FILE")]
    pub haproxy_config: Option<String>,
    #[arg(long, value_name = "CMD")]
    pub command: Option<String>,
    #[arg(long, value_name = "SECONDS")]
    pub reload_interval: Option<String>,
    #[arg(long, value_name = "N")]
    pub max_reload_retries: Option<String>,
    #[arg(long)]
    pub skip_validation: bool,
    #[arg(long)]
    pub dry: bool,
    #[arg(long, value_name = "N")]
    pub archive_versions: Option<String>,
    #[arg(long)]
    pub group_https_by_vhost: bool,
    #[arg(long, value_name = "N")]
    pub lru_cache_capacity: Option<String>,
    #[arg(long, value_name = "SOCKET")]
    pub syslog_socket: Option<String>,
}

impl HaproxyOnlyFlags {
    /// The flags given, by name.
    pub fn given(&self) -> Vec<&'static str> {
        let flags = [
            (self.haproxy_map, "--haproxy-map"),
            (self.haproxy_config.is_some(), "--haproxy-config"),
            (self.command.is_some(), "--command"),
            (self.reload_interval.is_some(), "--reload-interval"),
            (self.max_reload_retries.is_some(), "--max-reload-retries"),
            (self.skip_validation, "--skip-validation"),
            (self.dry, "--dry"),
            (self.archive_versions.is_some(), "--archive-versions"),
            (self.group_https_by_vhost, "--group-https-by-vhost"),
            (self.lru_cache_capacity.is_some(), "--lru-cache-capacity"),
            (self.syslog_socket.is_some(), "--syslog-socket"),
        ];
        flags
            .into_iter()
            .filter(|(set, _)| *set)
            .map(|(_, name)| name)
            .collect()
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the routing table built from Marathon's apps, then every problem found: the
    /// answer to "why is my app not routed?".
    Routes(RoutesArgs),
    /// Run everything on this machine with no setup: a Marathon simulator with the Tweeter
    /// tutorial's apps, real backends, and the balancer following the simulator's events while
    /// the demo scales and redeploys every few seconds.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address every demo listener binds to.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: std::net::IpAddr,
    /// The HTTP port (routes by Host).
    #[arg(long, default_value_t = 8080)]
    pub http_port: u16,
    /// The HTTPS port (routes by Host; a self-signed certificate).
    #[arg(long, default_value_t = 8443)]
    pub https_port: u16,
    /// The port that routes by the X-Marathon-App-Id header.
    #[arg(long, default_value_t = DEFAULT_PORTS.app_id)]
    pub app_id_port: u16,
    /// The admin port.
    #[arg(long, default_value_t = DEFAULT_PORTS.admin)]
    pub admin_port: u16,
    /// Tweeter's service port.
    #[arg(long, default_value_t = 10000)]
    pub tweeter_port: u16,
    /// Seconds between two changes to Tweeter.
    #[arg(long, default_value_t = 4.0)]
    pub interval: f64,
}

/// Runs `switchyard demo` until Ctrl-C or SIGTERM.
pub async fn demo(args: DemoArgs) -> ExitCode {
    if !(args.interval.is_finite() && args.interval >= 0.05 && args.interval < 1e6) {
        return fail("--interval must be at least 0.05 seconds");
    }
    let options = crate::sim::demo::DemoOptions {
        bind_address: args.bind_address,
        http_port: args.http_port,
        https_port: args.https_port,
        app_id_port: args.app_id_port,
        admin_port: args.admin_port,
        tweeter_port: args.tweeter_port,
        interval: std::time::Duration::from_secs_f64(args.interval),
    };
    match crate::sim::demo::run(options, stop_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// A `/v2/apps?embed=apps.tasks` JSON document to read instead of asking Marathon.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "marathon",
        required_unless_present = "marathon"
    )]
    pub apps_file: Option<PathBuf>,
    #[command(flatten)]
    pub access: MarathonAccess,
    /// Print JSON (the same document as the admin port's /routes).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub routing: RoutingFlags,
}

/// Flags that decide what is routed; shared by every command that builds a table.
#[derive(Debug, Clone, Args)]
pub struct RoutingFlags {
    /// Serve apps whose HAPROXY_GROUP (or HAPROXY_<n>_GROUP) includes this group; repeatable;
    /// `*` serves every app, including apps without a group.
    #[arg(long, value_name = "GROUP", default_value = "external")]
    pub group: Vec<String>,
    /// Serve only ports labelled HAPROXY_<n>_ENABLED=true.
    #[arg(long)]
    pub strict_mode: bool,
    /// Route only tasks whose Marathon health checks pass. On by default; accepted for
    /// Marathon-LB compatibility.
    #[arg(long, short = 'H', overrides_with = "no_health_check")]
    pub health_check: bool,
    /// Route tasks whatever their health-check results.
    #[arg(long)]
    pub no_health_check: bool,
    /// Lowest service port auto-assigned to IP-per-task apps without service ports.
    #[arg(long, default_value_t = 10050)]
    pub min_serv_port_ip_per_task: u16,
    /// Highest such port.
    #[arg(long, default_value_t = 10100)]
    pub max_serv_port_ip_per_task: u16,
    /// The HTTP port (no service port may take it).
    #[arg(long, default_value_t = DEFAULT_PORTS.http)]
    pub http_port: u16,
    /// The HTTPS port.
    #[arg(long, default_value_t = DEFAULT_PORTS.https)]
    pub https_port: u16,
    /// The admin port.
    #[arg(long, default_value_t = DEFAULT_PORTS.admin)]
    pub admin_port: u16,
    /// The port that routes by the X-Marathon-App-Id header.
    #[arg(long, default_value_t = DEFAULT_PORTS.app_id)]
    pub app_id_port: u16,
}

impl RoutingFlags {
    pub fn model_options(&self) -> Result<ModelOptions, String> {
        if self.min_serv_port_ip_per_task > self.max_serv_port_ip_per_task {
            return Err(format!(
                "--min-serv-port-ip-per-task {} is above --max-serv-port-ip-per-task {}",
                self.min_serv_port_ip_per_task, self.max_serv_port_ip_per_task
            ));
        }
        let groups = Groups::parse(&self.group.join(","));
        if groups.is_empty() {
            return Err("--group needs at least one group name (or '*')".to_owned());
        }
        Ok(ModelOptions {
            groups,
            strict_mode: self.strict_mode,
            health_check: !self.no_health_check,
            framework_name: std::env::var("FRAMEWORK_NAME")
                .ok()
                .filter(|n| !n.is_empty()),
            ip_per_task_ports: self.min_serv_port_ip_per_task..=self.max_serv_port_ip_per_task,
        })
    }

    pub fn build_options(&self) -> BuildOptions {
        let ports = BalancerPorts {
            http: self.http_port,
            https: self.https_port,
            admin: self.admin_port,
            app_id: self.app_id_port,
        };
        BuildOptions {
            reserved_ports: ports.reserved(),
            metrics: None,
        }
    }
}

pub(crate) fn fail(message: &str) -> ExitCode {
    eprintln!("switchyard: {message}");
    ExitCode::FAILURE
}

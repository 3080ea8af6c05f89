//! The command line. Flag names follow Marathon-LB's where they mean the same thing.
//!
//! | File | What |
//! |---|---|
//! | `mod.rs` | the top-level command: serve mode's options, the subcommands, the help's headings |
//! | `config.rs` | the config file and `SWITCHYARD_*` variables; errors naming where a value came from |
//! | `suggest.rs` | "did you mean": an unknown first word, a config file key |
//! | `serve.rs`, `dry_run.rs` | serve mode, and `--dry`: the same options read once and printed |
//! | `routes.rs` | `switchyard routes`, and reading the source once (shared with `--dry`) |
//! | `healthcheck.rs` | `switchyard healthcheck`: the container's health check, without curl |
//! | `manual.rs` | shell completions and man pages, generated from this command |
//! | `demo.rs` | `switchyard demo` |
//! | `zdd.rs` | `switchyard zdd`: a blue/green deployment (`src/zdd/`) |
//! | `*_flags.rs` | groups of flags shared by several commands |

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub mod config;
mod demo;
mod dry_run;
mod haproxy_flags;
mod healthcheck;
mod limit_flags;
mod manual;
mod marathon_flags;
mod routes;
mod routing_flags;
mod serve;
mod suggest;
mod zdd;

pub use demo::{demo, DemoArgs};
pub use dry_run::dry_run;
pub use haproxy_flags::HaproxyOnlyFlags;
pub use healthcheck::{healthcheck, HealthcheckArgs};
pub use limit_flags::LimitFlags;
pub use manual::{completions, man, CompletionsArgs, ManArgs};
pub use marathon_flags::{MarathonAccess, MarathonFollow, SourceMode};
pub use routes::{routes, RoutesArgs};
pub use routing_flags::RoutingFlags;
pub use serve::serve;
pub use zdd::{zdd, ZddArgs};

/// The headings `--help` groups options under, in the order they first appear.
pub(crate) mod heading {
    pub const SOURCE: &str = "Where the apps come from";
    pub const LOGIN: &str = "Logging in to Marathon";
    pub const FOLLOW: &str = "Following Marathon";
    pub const ROUTED: &str = "What is routed";
    pub const LISTENERS: &str = "Listeners";
    pub const TLS: &str = "TLS";
    pub const TIMEOUTS: &str = "Timeouts (seconds)";
    pub const LIMITS: &str = "Limits and engines";
    pub const LOGGING: &str = "Logging";
    pub const HAPROXY_ONLY: &str =
        "Marathon-LB flags accepted with no effect (they configure HAProxy)";
}

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
    /// A TOML file of options (keys are option names: `http-port = 80`); flags and
    /// `SWITCHYARD_*` environment variables win over it. See config/switchyard.toml.
    // Before the flattened options: their headings would carry over to it.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Without a subcommand: run the balancer.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Log format: `text` (one line per event) or `json` (one object per line).
    #[arg(long, value_enum, default_value = "text", global = true, help_heading = heading::LOGGING)]
    pub log_format: LogFormat,
    /// Least severe level logged (Marathon-LB's names are accepted in any case:
    /// DEBUG, INFO, WARNING, ERROR, CRITICAL). `RUST_LOG`, when set, wins.
    #[arg(long, default_value = "info", global = true, value_parser = parse_log_level, help_heading = heading::LOGGING)]
    pub log_level: tracing::Level,
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
    /// Read the source once, print the routing table, its problems and the certificates that
    /// do not load, and exit: 0 without error-severity problems, 1 with (Marathon-LB's --dry;
    /// `haproxy -c`, `nginx -t`). Nothing is bound or served.
    #[arg(long, short = 'd')]
    pub dry: bool,
    /// A `/v2/apps?embed=apps.tasks` JSON document to serve instead of Marathon; re-read when
    /// it changes and on SIGHUP.
    #[arg(long, value_name = "FILE", conflicts_with = "marathon", help_heading = heading::SOURCE)]
    pub apps_file: Option<PathBuf>,
    /// Seconds between checks of the apps file for changes.
    #[arg(long, default_value_t = 1.0, help_heading = heading::SOURCE)]
    pub apps_file_poll: f64,
    #[command(flatten)]
    pub access: MarathonAccess,
    #[command(flatten)]
    pub follow: MarathonFollow,
    #[command(flatten)]
    pub routing: RoutingFlags,
    /// Address the listeners bind to.
    #[arg(long, default_value = "0.0.0.0", help_heading = heading::LISTENERS)]
    pub bind_address: std::net::IpAddr,
    /// Address the admin port binds to (default: --bind-address), e.g. a private interface.
    #[arg(long, help_heading = heading::LISTENERS)]
    pub admin_bind_address: Option<std::net::IpAddr>,
    /// Do not bind the HTTP and HTTPS ports: serve service ports (and the app-id port) only.
    #[arg(long, help_heading = heading::LISTENERS)]
    pub dont_bind_http_https: bool,
    /// TLS certificates for the HTTPS port: a comma-separated list of PEM files (chain and
    /// private key in one file) and directories of them; chosen by SNI, the first is the
    /// default. Marathon-LB's HAPROXY_SSL_CERT (PEM text) and HAPROXY_SSL_CERT0..100 variables
    /// are served after these. Without any, a self-signed certificate is generated at start.
    #[arg(long, value_name = "PATHS", value_delimiter = ',', help_heading = heading::TLS)]
    pub ssl_certs: Vec<PathBuf>,
    /// Seconds between checks of the certificate files for changes (SIGHUP also reloads).
    #[arg(long, default_value_t = 2.0, help_heading = heading::TLS)]
    pub ssl_certs_poll: f64,
    #[command(flatten)]
    pub limits: LimitFlags,
    /// Worker threads for the proxy (HAProxy's `nbthread`): each runs its own event loop and
    /// accepts on every listener, and a connection stays on the thread that accepted it. 0: one
    /// per CPU this process may run on. 1 runs everything, control plane included, on one thread.
    #[arg(long, default_value_t = 0, help_heading = heading::LIMITS)]
    pub threads: usize,
    #[command(flatten)]
    pub haproxy_only: HaproxyOnlyFlags,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the routing table built from Marathon's apps, then every problem found: the
    /// answer to "why is my app not routed?". Exits 1 when a problem is an error.
    Routes(RoutesArgs),
    /// Ask a running balancer's admin port whether it serves (the container's HEALTHCHECK):
    /// exits 0 when it answers 200, 1 otherwise.
    Healthcheck(HealthcheckArgs),
    /// Print a shell completion script for this command line.
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    Man(ManArgs),
    /// Run everything on this machine with no setup: a Marathon simulator with the Tweeter
    /// tutorial's apps, real backends, and the balancer following the simulator's events while
    /// the demo scales and redeploys every few seconds.
    Demo(DemoArgs),
    /// Blue/green deployment of a Marathon app, as Marathon-LB's zdd.py: start the new colour,
    /// scale it up as every balancer routes it, kill the old tasks each balancer has drained
    /// with nothing in flight, delete the old app.
    // A flag given twice: the last wins, as in zdd.py (argparse).
    #[command(args_override_self = true)]
    Zdd(ZddArgs),
}

pub(crate) fn fail(message: &str) -> ExitCode {
    eprintln!("switchyard: {message}");
    ExitCode::FAILURE
}

//! `switchyard zdd`: a blue/green deployment, with Marathon-LB's `zdd.py` flags and their
//! meanings (`src/zdd/` does it; `docs/zdd.md` tells how).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::MarathonAccess;

#[derive(Debug, Args)]
pub struct ZddArgs {
    /// The app definition (JSON) to deploy, with the HAPROXY_DEPLOYMENT_GROUP and
    /// HAPROXY_DEPLOYMENT_ALT_PORT labels.
    #[arg(long, short = 'j', value_name = "FILE")]
    pub json: PathBuf,
    #[command(flatten)]
    pub access: MarathonAccess,
    /// A balancer's admin URL (`http://marathon-lb.marathon.mesos:9090`); repeatable. A name
    /// stands for every address it resolves to: each is a balancer instance to wait for.
    #[arg(long = "marathon-lb", short = 'l', value_name = "URL", required = true)]
    pub balancers: Vec<String>,
    /// Print the plan and the app definition it would post; change nothing.
    #[arg(long, short = 'd')]
    pub dry_run: bool,
    /// Deploy without asking (each kill and the delete ask otherwise).
    #[arg(long, short = 'f')]
    pub force: bool,
    /// Seconds between two steps (scale, kill); waits look again at least every second.
    #[arg(long, short = 's', value_name = "SECONDS", default_value_t = 5.0)]
    pub step_delay: f64,
    /// Instances the new app starts with (at most the live app's, or --new-instances).
    #[arg(long, short = 'i', default_value_t = 1)]
    pub initial_instances: u32,
    /// Scale the new app up by this many each step, instead of by half again and then straight
    /// to the target once it outnumbers the old app.
    #[arg(long, default_value_t = 0)]
    pub linear_increase: u32,
    /// Finish a deployment that stopped (or was interrupted) halfway.
    #[arg(long, short = 'r')]
    pub resume: bool,
    /// Seconds to wait for a step (tasks healthy and routed by every balancer, old tasks
    /// drained) before stopping, leaving both apps as they are.
    #[arg(long, short = 'w', value_name = "SECONDS", default_value_t = 300.0)]
    pub max_wait: f64,
    /// Split traffic: replace only this many old instances with new ones and keep both apps
    /// (hybrid); end the split later with --complete-cur or --complete-prev.
    #[arg(long, short = 'n', default_value_t = 0)]
    pub new_instances: u32,
    /// End a split: every instance to the current (newest) app, then delete the previous one.
    #[arg(long, short = 'c')]
    pub complete_cur: bool,
    /// End a split: every instance back to the previous app, then delete the newest one.
    #[arg(long, short = 'p')]
    pub complete_prev: bool,
    /// An executable run before each kill with three JSON arguments: the old app, the ids of
    /// the tasks to kill, the new app. A non-zero exit stops the deployment.
    #[arg(long, value_name = "PATH")]
    pub pre_kill_hook: Option<PathBuf>,
    /// Accepted for `zdd.py` command lines; has no effect (logs go to stderr).
    #[arg(long, value_name = "PATH", hide = true)]
    pub syslog_socket: Option<String>,
}

/// Runs `switchyard zdd`; the exit status is `zdd.py`'s (see `docs/zdd.md`).
pub async fn zdd(args: ZddArgs) -> ExitCode {
    if args.access.marathon.is_empty() {
        eprintln!("switchyard zdd: the argument --marathon/-m URL is required");
        return ExitCode::from(3);
    }
    let seconds = |name: &str, value: f64| {
        (0.0..1e9)
            .contains(&value)
            .then(|| Duration::from_secs_f64(value))
            .ok_or_else(|| format!("--{name} must be a number of seconds, not {value}"))
    };
    let options = (|| -> Result<crate::zdd::Options, String> {
        Ok(crate::zdd::Options {
            json: args.json.clone(),
            marathon: args.access.config()?,
            balancers: args.balancers.clone(),
            dry_run: args.dry_run,
            force: args.force,
            step_delay: seconds("step-delay", args.step_delay)?,
            initial_instances: args.initial_instances,
            linear_increase: args.linear_increase,
            resume: args.resume,
            max_wait: seconds("max-wait", args.max_wait)?,
            new_instances: args.new_instances,
            complete_cur: args.complete_cur,
            complete_prev: args.complete_prev,
            pre_kill_hook: args.pre_kill_hook.clone(),
        })
    })();
    match options {
        Ok(options) => crate::zdd::run(options).await,
        Err(message) => {
            eprintln!("switchyard zdd: {message}");
            ExitCode::from(3)
        }
    }
}

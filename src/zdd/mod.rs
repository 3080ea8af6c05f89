//! `switchyard zdd`: a blue/green deployment driven end to end, what Marathon-LB's `zdd.py`
//! did, on the balancers' own knowledge of what they route and what is in flight.
//!
//! | File | What |
//! |---|---|
//! | `mod.rs` | the options, the errors and their exit statuses, the start: new deployment or resume |
//! | `app.rs` | the definition posted: colour, id, alternate port, `HAPROXY_DEPLOYMENT_*` labels |
//! | `deployed.rs` | an app of the group as Marathon reports it, typed |
//! | `marathon.rs` | the Marathon calls: list, read, create, scale, kill, delete |
//! | `balancers.rs` | every balancer instance (`-l`, each address of a name) and its `/stats` |
//! | `step.rs` | the next step from what Marathon and the balancers say (pure) |
//! | `swap.rs` | the loop: observe, act, wait; `--max-wait`, interruption |
//! | `progress.rs`, `hook.rs` | the lines, the bar and the questions; `--pre-kill-hook` |

mod app;
mod balancers;
mod deployed;
mod hook;
mod marathon;
mod progress;
mod step;
mod swap;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::marathon::{MarathonClient, MarathonConfig};

use app::Sizing;
use deployed::Deployed;
use progress::Progress;
use step::Mode;
use swap::Swap;

/// What `switchyard zdd` was asked to do (flags as `zdd.py`'s).
#[derive(Debug, Clone)]
pub struct Options {
    pub json: PathBuf,
    pub marathon: MarathonConfig,
    /// Admin URLs of the balancers (`-l`).
    pub balancers: Vec<String>,
    pub dry_run: bool,
    pub force: bool,
    pub step_delay: Duration,
    pub initial_instances: u32,
    pub linear_increase: u32,
    pub resume: bool,
    pub max_wait: Duration,
    pub new_instances: u32,
    pub complete_cur: bool,
    pub complete_prev: bool,
    pub pre_kill_hook: Option<PathBuf>,
}

/// Why a deployment stopped; each maps to an exit status (`zdd.py`'s where it had one).
#[derive(Debug, thiserror::Error)]
pub enum ZddError {
    #[error("{0}")]
    Declined(String),
    #[error("{0}")]
    Other(String),
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    #[error("the app definition is incomplete: {0}")]
    MissingField(String),
    #[error("balancer: {0}")]
    Balancer(String),
    #[error("Marathon: {0}")]
    Marathon(String),
    #[error("creating the new app failed: {0}")]
    Create(String),
    #[error("deleting the old app failed: {0}")]
    Delete(String),
    #[error("scaling failed: {0}")]
    Scale(String),
    #[error("{0}")]
    TimedOut(String),
    #[error("the pre-kill hook stopped the deployment: {0}")]
    Hook(String),
    #[error("{0}")]
    InProgress(String),
    #[error("{0}")]
    Interrupted(String),
}

impl ZddError {
    /// 1–9 as `zdd.py`'s; 10 and up are ours (`docs/zdd.md` lists them).
    pub fn exit_status(&self) -> u8 {
        match self {
            ZddError::Declined(_) => 1,
            ZddError::Other(_) => 2,
            ZddError::InvalidArgs(_) => 3,
            ZddError::MissingField(_) => 4,
            ZddError::Balancer(_) => 5,
            ZddError::Marathon(_) => 6,
            ZddError::Create(_) => 7,
            ZddError::Delete(_) => 8,
            ZddError::Scale(_) => 9,
            ZddError::TimedOut(_) => 10,
            ZddError::Hook(_) => 11,
            ZddError::InProgress(_) => 12,
            ZddError::Interrupted(_) => 130,
        }
    }
}

/// Runs a deployment; the exit status says how it ended.
pub async fn run(options: Options) -> ExitCode {
    let mut progress = Progress::new();
    let ended = deploy(&options, &mut progress).await;
    progress.finish();
    match ended {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("switchyard zdd: {err}");
            ExitCode::from(err.exit_status())
        }
    }
}

async fn deploy(options: &Options, progress: &mut Progress) -> Result<(), ZddError> {
    if options.complete_cur && options.complete_prev {
        return Err(ZddError::InvalidArgs(
            "--complete-cur and --complete-prev exclude each other".into(),
        ));
    }
    let text = std::fs::read_to_string(&options.json).map_err(|e| {
        ZddError::InvalidArgs(format!("cannot read {}: {e}", options.json.display()))
    })?;
    let user_app: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        ZddError::InvalidArgs(format!("{} is not JSON: {e}", options.json.display()))
    })?;
    let group = app::validate(&user_app)?;
    let client = MarathonClient::new(options.marathon.clone())
        .map_err(|e| ZddError::InvalidArgs(e.to_string()))?;
    let balancers = balancers::resolve(&options.balancers).await?;
    let previous = marathon::group_apps(&client, &group).await?;
    let swap = Swap::new(options, &client, balancers, group.clone());

    if let [.., older, newest] = &previous[..] {
        let (old, new, mode) = if options.complete_cur {
            (older, newest, Mode::Whole)
        } else if options.complete_prev {
            (newest, older, Mode::Whole)
        } else if options.resume {
            (older, newest, mode_of(newest.new_instances.unwrap_or(0)))
        } else {
            return Err(ZddError::InProgress(format!(
                "group {group} has {} apps ({}): a deployment is under way or the group is \
                 split. --resume finishes it; --complete-cur or --complete-prev ends a split",
                previous.len(),
                ids(&previous)
            )));
        };
        progress.say(&format!(
            "group {group}: {} ({}) replaces {} ({})",
            new.id,
            new.colour_name(),
            old.id,
            old.colour_name()
        ));
        if options.dry_run {
            progress.say("dry run: nothing changed");
            return Ok(());
        }
        swap.check_balancers().await?;
        return swap
            .run(progress, Some(old.id.clone()), new.id.clone(), mode)
            .await;
    }
    if options.complete_cur || options.complete_prev {
        return Err(ZddError::InvalidArgs(format!(
            "--complete-cur and --complete-prev end a split group; {group} has {} app(s)",
            previous.len()
        )));
    }
    if options.resume {
        progress.say(&format!(
            "--resume: no deployment under way in {group}; starting one"
        ));
    }
    let last = previous.last();
    if let Some(last) = last.filter(|l| l.deployments > 0) {
        return Err(ZddError::InProgress(format!(
            "Marathon is still deploying {}: wait until it is done, then deploy",
            last.id
        )));
    }
    let sizing = Sizing {
        initial: options.initial_instances,
        new_instances: options.new_instances,
    };
    let definition = app::prepare(user_app, last, sizing);
    let new = Deployed::from_json(definition.clone()).map_err(ZddError::Other)?;
    let mode = mode_of(new.new_instances.unwrap_or(0));
    for line in swap::plan(last, &new, mode, options) {
        progress.say(&line);
    }
    progress.say("app definition:");
    progress.say(&serde_json::to_string_pretty(&definition).unwrap_or_default());
    if options.dry_run {
        progress.say("dry run: nothing changed");
        return Ok(());
    }
    swap.check_balancers().await?;
    if !options.force {
        progress.confirm("Continue with deployment?").await?;
    }
    marathon::create(&client, &definition).await?;
    progress.say(&format!(
        "created {} with {} instance(s)",
        new.id, new.instances
    ));
    swap.run(progress, last.map(|l| l.id.clone()), new.id, mode)
        .await
}

fn mode_of(new_instances: u32) -> Mode {
    match new_instances {
        0 => Mode::Whole,
        n => Mode::Split { new_instances: n },
    }
}

fn ids(apps: &[Deployed]) -> String {
    apps.iter()
        .map(|a| a.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

//! The deployment loop (`zdd.py`'s `swap_zdd_apps`): read both apps and every balancer, take
//! the step `step.rs` decides, wait between steps. It stops, changing nothing more, when
//! nothing moves for `--max-wait`, when the pre-kill hook or a question says no, and on SIGINT
//! or SIGTERM (between steps: never halfway through a Marathon call), leaving both colours in
//! Marathon for `--resume` or `--complete-prev`.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::marathon::MarathonClient;

use super::balancers::{Balancer, View};
use super::deployed::Deployed;
use super::progress::Progress;
use super::step::{self, Mode, Next, Why};
use super::{hook, marathon, Options, ZddError};

/// Longest pause between two looks while waiting (shorter with a shorter `--step-delay`).
const MAX_POLL: Duration = Duration::from_secs(1);

pub struct Swap<'a> {
    options: &'a Options,
    client: &'a MarathonClient,
    balancers: Vec<Balancer>,
    group: String,
    http: reqwest::Client,
    stop: CancellationToken,
}

impl<'a> Swap<'a> {
    pub fn new(
        options: &'a Options,
        client: &'a MarathonClient,
        balancers: Vec<Balancer>,
        group: String,
    ) -> Swap<'a> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_default();
        let stop = CancellationToken::new();
        tokio::spawn(on_signal(stop.clone()));
        Swap {
            options,
            client,
            balancers,
            group,
            http,
            stop,
        }
    }

    /// Every balancer answers before anything changes.
    pub async fn check_balancers(&self) -> Result<(), ZddError> {
        let errors: Vec<String> = self
            .views()
            .await
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ZddError::Balancer(format!(
                "{}; nothing was changed",
                errors.join("; ")
            )))
        }
    }

    async fn views(&self) -> Vec<Result<View, String>> {
        let reads = self
            .balancers
            .iter()
            .map(|b| b.view(&self.http, &self.group));
        futures_util::future::join_all(reads).await
    }

    /// Drives the deployment of `new` (replacing `old`, if any) to its end.
    pub async fn run(
        &self,
        progress: &mut Progress,
        old: Option<String>,
        new: String,
        mode: Mode,
    ) -> Result<(), ZddError> {
        let options = self.options;
        let poll = options
            .step_delay
            .clamp(Duration::from_millis(10), MAX_POLL);
        let mut since = Instant::now();
        loop {
            if self.stop.is_cancelled() {
                return Err(ZddError::Interrupted(format!(
                    "interrupted; {} left as they are: run again with --resume to finish",
                    both(old.as_deref(), &new)
                )));
            }
            let new_app = marathon::app(self.client, &new).await?;
            let old_app = match &old {
                Some(id) => Some(marathon::app(self.client, id).await?),
                None => None,
            };
            let views = self.views().await;
            let (status, next) = step::decide(
                old_app.as_ref(),
                &new_app,
                &views,
                mode,
                options.linear_increase,
            );
            let waiting = match &next {
                Next::Wait(why) => Some(why),
                _ => None,
            };
            progress.status(&status, waiting);
            match next {
                Next::Wait(why) => {
                    if since.elapsed() >= options.max_wait {
                        return Err(stopped(&why, options.max_wait, old.as_deref(), &new));
                    }
                    self.pause(poll).await;
                    continue;
                }
                Next::Done => {
                    progress.say(&done_line(&new_app, old_app.as_ref(), mode));
                    return Ok(());
                }
                Next::Scale(instances) => {
                    progress.say(&format!("scaling {new} to {instances} instances"));
                    marathon::scale(self.client, &new, instances).await?;
                }
                Next::Kill(tasks) => {
                    let old_app = old_app
                        .as_ref()
                        .ok_or_else(|| ZddError::Other("a kill without an old app".to_owned()))?;
                    self.before_kill(progress, old_app, &tasks, &new_app)
                        .await?;
                    progress.say(&format!(
                        "killing {} drained task(s) of {}: {}",
                        tasks.len(),
                        old_app.id,
                        tasks.join(", ")
                    ));
                    marathon::kill(self.client, &tasks).await?;
                }
                Next::DeleteOld => {
                    let old_app = old_app
                        .as_ref()
                        .ok_or_else(|| ZddError::Other("a delete without an old app".to_owned()))?;
                    let tasks: Vec<String> = old_app.tasks.iter().map(|t| t.id.clone()).collect();
                    self.before_kill(progress, old_app, &tasks, &new_app)
                        .await?;
                    progress.say(&format!("deleting {}", old_app.id));
                    marathon::delete(self.client, &old_app.id).await?;
                    progress.say(&format!(
                        "done: {} serves {} with {} instances",
                        new_app.id, self.group, new_app.instances
                    ));
                    return Ok(());
                }
            }
            since = Instant::now();
            self.pause(options.step_delay).await;
        }
    }

    /// The pre-kill hook, then the question (without `--force`).
    async fn before_kill(
        &self,
        progress: &Progress,
        old: &Deployed,
        tasks: &[String],
        new: &Deployed,
    ) -> Result<(), ZddError> {
        if let Some(path) = &self.options.pre_kill_hook {
            progress.say(&format!("running the pre-kill hook {}", path.display()));
            hook::run(path, &old.json, tasks, &new.json).await?;
        }
        if !self.options.force {
            let question = format!("Kill {} task(s) of {}?", tasks.len(), old.id);
            progress.confirm(&question).await?;
        }
        Ok(())
    }

    async fn pause(&self, delay: Duration) {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.stop.cancelled() => {}
        }
    }
}

/// What a dry run prints, and a real one before it starts: the steps to come.
pub fn plan(last: Option<&Deployed>, new: &Deployed, mode: Mode, options: &Options) -> Vec<String> {
    let port = |a: &Deployed| a.service_port.map_or("none".to_owned(), |p| p.to_string());
    let Some(last) = last else {
        return vec![format!(
            "plan: no live app in the group: create {} ({}) with {} instance(s) on service port {}",
            new.id,
            new.colour_name(),
            new.instances,
            port(new)
        )];
    };
    let goal = match mode {
        Mode::Whole => new.target(),
        Mode::Split { new_instances } => new_instances,
    };
    let mut steps = vec![new.instances];
    let mut current = new.instances;
    while current < goal {
        let old_left = new.target().saturating_sub(current);
        current = step::next_instances(current, old_left, goal, mode, options.linear_increase);
        steps.push(current);
    }
    let steps: Vec<String> = steps.iter().map(u32::to_string).collect();
    let hook = match &options.pre_kill_hook {
        Some(path) => format!("run {} and ", path.display()),
        None => String::new(),
    };
    let end = match mode {
        Mode::Whole => format!("4. delete {}", last.id),
        Mode::Split { new_instances } => format!(
            "4. keep the split: {} keeps {} instance(s), {} serves {new_instances}",
            last.id,
            new.target().saturating_sub(new_instances),
            new.id
        ),
    };
    vec![
        format!(
            "plan: {} ({}, {} instances, service port {}) is live",
            last.id,
            last.colour_name(),
            last.instances,
            port(last)
        ),
        format!(
            "1. create {} ({}) with {} instance(s) on service port {}",
            new.id,
            new.colour_name(),
            new.instances,
            port(new)
        ),
        format!(
            "2. scale it {} as every balancer routes its healthy tasks",
            steps.join(" → ")
        ),
        format!("3. {hook}kill the old tasks each balancer drains with nothing in flight"),
        end,
    ]
}

fn done_line(new: &Deployed, old: Option<&Deployed>, mode: Mode) -> String {
    match (old, mode) {
        (Some(old), Mode::Split { .. }) => format!(
            "done: split: {} serves {} instance(s), {} serves {}",
            new.id, new.instances, old.id, old.instances
        ),
        _ => format!("done: {} serves with {} instances", new.id, new.instances),
    }
}

fn both(old: Option<&str>, new: &str) -> String {
    match old {
        Some(old) => format!("{old} and {new} are"),
        None => format!("{new} is"),
    }
}

/// `--max-wait` ran out: what was awaited, and what is left in Marathon.
fn stopped(why: &Why, max_wait: Duration, old: Option<&str>, new: &str) -> ZddError {
    let message = format!(
        "stopped after waiting {}s (--max-wait): {why}. Nothing more was changed: {} left in \
         Marathon, and the balancers route only their healthy tasks. Fix the cause, then run \
         again with --resume to finish{}",
        max_wait.as_secs_f64(),
        both(old, new),
        old.map_or(String::new(), |old| format!(
            ", or with --complete-prev to go back to {old}"
        ))
    );
    match why {
        Why::Unanswered(_) => ZddError::Balancer(message),
        _ => ZddError::TimedOut(message),
    }
}

/// SIGINT or SIGTERM: stop at the next step boundary.
async fn on_signal(stop: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            stop.cancel();
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_ok() {
        stop.cancel();
    }
}

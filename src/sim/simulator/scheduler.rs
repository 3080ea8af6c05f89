//! Marathon's scheduler, for apps changed through the API: it launches the tasks an app lacks
//! (through a [`Launcher`] the caller provides: tests and the demo start real backends), kills
//! the youngest of those it has too many of, runs the apps' HTTP health checks against the
//! tasks, and ends deployments once every instance runs healthy.
//!
//! Simplified from Marathon: checks run every `every` whatever `intervalSeconds` says (a
//! simulated cluster goes fast), with no grace period, and a task failing them is reported
//! unhealthy but never killed and replaced.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio::sync::Notify;

use super::node::lock;
use super::state::Ended;
use super::{Simulator, TaskSpec};

/// Starts and stops what runs a task.
pub trait Launcher: Send + Sync + fmt::Debug + 'static {
    /// Starts a task of app `app_id` (`definition` is the app as posted, e.g. its `env`): where
    /// it runs, or why it cannot.
    fn launch(
        &self,
        app_id: &str,
        definition: &Value,
    ) -> BoxFuture<'static, Result<TaskSpec, String>>;
    /// A task that ran at `host` on `ports` ended: killed, scaled down, or its app deleted.
    fn stop(&self, host: &str, ports: &[u16]);
}

/// The scheduler's handle, kept in the shared state.
pub(super) struct Scheduler {
    pub(super) launcher: Arc<dyn Launcher>,
    /// Wakes the loop after an API change.
    pub(super) wake: Notify,
    every: Duration,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("launcher", &self.launcher)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Stops what ran the tasks that ended.
    pub(super) fn stop_all(&self, ended: &[Ended]) {
        for task in ended {
            self.launcher.stop(&task.host, &task.ports);
        }
    }
}

impl Simulator {
    /// From now on, apps created or changed through the API (`POST /v2/apps`, `PUT`, ...) get
    /// their tasks from `launcher`, health checks every `every`, and deployments that end when
    /// they run healthy. Only the first call counts.
    pub fn run_tasks(&self, launcher: Arc<dyn Launcher>, every: Duration) {
        let scheduler = Arc::new(Scheduler {
            launcher,
            wake: Notify::new(),
            every,
        });
        if self.shared.scheduler.set(scheduler.clone()).is_err() {
            tracing::warn!("run_tasks: the simulator already has a launcher");
            return;
        }
        let sim = self.clone();
        tokio::spawn(async move { sim.schedule(scheduler).await });
    }

    async fn schedule(self, scheduler: Arc<Scheduler>) {
        let mut shutdown = self.shared.shutdown.subscribe();
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap_or_default();
        loop {
            if *shutdown.borrow_and_update() {
                let ended = lock(&self.shared.apps).managed_tasks();
                scheduler.stop_all(&ended);
                return;
            }
            self.balance(&scheduler).await;
            self.check_health(&http).await;
            self.change(|apps| Some(((), apps.finish_deployments())));
            tokio::select! {
                () = scheduler.wake.notified() => {}
                () = tokio::time::sleep(scheduler.every) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Launches the tasks managed apps lack; kills the youngest of those they have too many of.
    async fn balance(&self, scheduler: &Scheduler) {
        let imbalances = lock(&self.shared.apps).imbalances();
        for (app_id, definition, diff) in imbalances {
            if diff < 0 {
                let ended = self.change(|apps| {
                    let ids = apps.youngest(&app_id, diff.unsigned_abs() as usize);
                    Some(apps.kill_tasks(&ids, false))
                });
                scheduler.stop_all(&ended.unwrap_or_default());
                continue;
            }
            for _ in 0..diff {
                let spec = match scheduler.launcher.launch(&app_id, &definition).await {
                    Ok(spec) => spec,
                    Err(why) => {
                        tracing::warn!(app = %app_id, why, "simulator could not launch a task");
                        break;
                    }
                };
                let (host, ports) = (spec.host.clone(), spec.ports.clone());
                // The app may have been deleted or scaled down meanwhile.
                let started = self.change(|apps| {
                    let lacking = apps
                        .imbalances()
                        .iter()
                        .any(|(id, _, diff)| *id == app_id && *diff > 0);
                    if lacking {
                        apps.start_task(&app_id, spec)
                    } else {
                        None
                    }
                });
                if started.is_none() {
                    scheduler.launcher.stop(&host, &ports);
                    break;
                }
            }
        }
    }

    /// One round of health checks; a verdict that changed is recorded (and its events sent).
    async fn check_health(&self, http: &reqwest::Client) {
        let targets = lock(&self.shared.apps).check_targets();
        for target in targets {
            let alive = target.url.is_empty() || probe(http, &target.url).await;
            if target.alive != Some(alive) {
                self.change(|apps| apps.set_health(&target.task_id, alive).map(|e| ((), e)));
            }
        }
    }
}

/// Marathon's HTTP check: 2xx or 3xx within the timeout.
async fn probe(http: &reqwest::Client, url: &str) -> bool {
    match http.get(url).send().await {
        Ok(response) => {
            let status = response.status();
            status.is_success() || status.is_redirection()
        }
        Err(_) => false,
    }
}

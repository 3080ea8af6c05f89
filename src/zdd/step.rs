//! The next step of a deployment, decided from what Marathon and every balancer say now. Pure,
//! so that each rule is tested on its own; `swap.rs` observes, acts and waits.
//!
//! The rules, in order: wait while Marathon deploys, while the new app is not all running and
//! healthy, while a balancer does not answer or does not route every ready new task (or still
//! routes a task Marathon no longer has); then finish, delete the old app, kill the old tasks
//! every balancer drains with nothing in flight, or scale the new app up a step.

use std::collections::HashSet;
use std::fmt;

use super::balancers::{EndpointView, View};
use super::deployed::Deployed;

/// Whole (every old instance replaced) or split (`--new-instances`: hybrid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Whole,
    Split { new_instances: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Wait(Why),
    /// Old tasks every balancer drains, with nothing in flight on any.
    Kill(Vec<String>),
    /// Scale the new app to this many instances.
    Scale(u32),
    /// The new app serves every instance and the old one is drained: delete it.
    DeleteOld,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Marathon is still deploying this app.
    Deploying(String),
    /// The new app's tasks are not all running and healthy: `(ready, instances)`, and the
    /// tasks whose health checks fail.
    NotReady {
        ready: usize,
        instances: u32,
        failing: Vec<String>,
    },
    /// These balancers did not answer.
    Unanswered(Vec<String>),
    /// Some balancer does not route every ready new task yet (or still routes a killed task).
    NotRouted,
    /// Old tasks are draining with requests in flight.
    Draining,
    /// The balancers drain no old task yet.
    NothingDrained,
}

/// What one step saw, for the progress line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    pub new_id: String,
    pub new_instances: u32,
    pub new_ready: usize,
    pub goal: u32,
    pub routed_on: usize,
    pub balancers: usize,
    pub old_id: Option<String>,
    pub old_instances: u32,
    pub old_draining: usize,
    pub old_in_flight: usize,
}

/// Decides the next step. `views` holds each balancer's view of the group (or why it has
/// none); `linear` is `--linear-increase` (0: `zdd.py`'s 50 % steps).
pub fn decide(
    old: Option<&Deployed>,
    new: &Deployed,
    views: &[Result<View, String>],
    mode: Mode,
    linear: u32,
) -> (Status, Next) {
    let goal = match mode {
        Mode::Whole => new.target(),
        Mode::Split { new_instances } => new_instances,
    };
    let ready: Vec<&str> = new.ready().map(|t| t.id.as_str()).collect();
    let known: HashSet<&str> = new
        .tasks
        .iter()
        .chain(old.into_iter().flat_map(|o| &o.tasks))
        .map(|t| t.id.as_str())
        .collect();
    let routes_all = |view: &View| {
        ready
            .iter()
            .all(|id| view.get(*id).is_some_and(|e| !e.down))
            && view.keys().all(|id| known.contains(id.as_str()))
    };
    let routed_on = views
        .iter()
        .filter(|v| v.as_ref().is_ok_and(routes_all))
        .count();
    let old_tasks = old.map_or(&[][..], |o| &o.tasks[..]);
    let on_balancers = |id: &'_ str| -> Vec<EndpointView> {
        views
            .iter()
            .filter_map(|v| v.as_ref().ok()?.get(id).copied())
            .collect()
    };
    let drained = |id: &str| {
        views.iter().all(|v| match v {
            Ok(view) => view.get(id).is_none_or(|e| e.draining && e.in_flight == 0),
            Err(_) => false,
        })
    };
    let status = Status {
        new_id: new.id.clone(),
        new_instances: new.instances,
        new_ready: ready.len(),
        goal,
        routed_on,
        balancers: views.len(),
        old_id: old.map(|o| o.id.clone()),
        old_instances: old.map_or(0, |o| o.instances),
        old_draining: old_tasks
            .iter()
            .filter(|t| on_balancers(&t.id).iter().any(|e| e.draining))
            .count(),
        old_in_flight: old_tasks
            .iter()
            .flat_map(|t| on_balancers(&t.id).into_iter().map(|e| e.in_flight))
            .sum(),
    };
    let wait = |why| (status.clone(), Next::Wait(why));
    if !new.settled() {
        let failing: Vec<String> = new
            .tasks
            .iter()
            .filter(|t| t.alive == Some(false))
            .map(|t| t.id.clone())
            .collect();
        if failing.is_empty() && ready.len() == new.instances as usize {
            return wait(Why::Deploying(new.id.clone()));
        }
        return wait(Why::NotReady {
            ready: ready.len(),
            instances: new.instances,
            failing,
        });
    }
    if let Some(old) = old.filter(|o| o.deployments > 0) {
        return wait(Why::Deploying(old.id.clone()));
    }
    let unanswered: Vec<String> = views.iter().filter_map(|v| v.clone().err()).collect();
    if !unanswered.is_empty() {
        return wait(Why::Unanswered(unanswered));
    }
    if routed_on < views.len() {
        return wait(Why::NotRouted);
    }
    let Some(old) = old else {
        return (status, Next::Done);
    };
    let target = new.target();
    let keep_old = match mode {
        Mode::Whole => 0,
        Mode::Split { new_instances } => target.saturating_sub(new_instances),
    };
    if matches!(mode, Mode::Split { .. }) && new.instances >= goal && old.instances <= keep_old {
        return (status, Next::Done);
    }
    if mode == Mode::Whole && new.instances >= goal && old.tasks.iter().all(|t| drained(&t.id)) {
        return (status, Next::DeleteOld);
    }
    let may_kill = old.instances.saturating_sub(keep_old) as usize;
    let kill: Vec<String> = old
        .tasks
        .iter()
        .filter(|t| drained(&t.id))
        .take(may_kill)
        .map(|t| t.id.clone())
        .collect();
    if !kill.is_empty() {
        return (status, Next::Kill(kill));
    }
    if new.instances < goal {
        let next = next_instances(new.instances, old.instances, goal, mode, linear);
        return (status, Next::Scale(next));
    }
    let draining_busy = old.tasks.iter().any(|t| {
        on_balancers(&t.id)
            .iter()
            .any(|e| e.draining && e.in_flight > 0)
    });
    if draining_busy {
        return wait(Why::Draining);
    }
    wait(Why::NothingDrained)
}

/// `zdd.py`'s `scale_new_app_instances`: `linear` more each step, or half as many again
/// (`n + (n+1)/2`), jumping to the goal once the new app would outnumber the old in a whole
/// deployment. Always at least one more, never past the goal.
pub fn next_instances(current: u32, old: u32, goal: u32, mode: Mode, linear: u32) -> u32 {
    let next = if linear > 0 {
        current.saturating_add(linear)
    } else {
        let grown = current + current.div_ceil(2);
        if mode == Mode::Whole && grown >= old {
            goal
        } else {
            grown
        }
    };
    next.max(current + 1).min(goal.max(current))
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "new {}: {}/{} instances, {} healthy, routed on {}/{} balancers",
            self.new_id,
            self.new_instances,
            self.goal,
            self.new_ready,
            self.routed_on,
            self.balancers
        )?;
        if let Some(old) = &self.old_id {
            write!(
                f,
                " | old {old}: {} instances, {} draining, {} in flight",
                self.old_instances, self.old_draining, self.old_in_flight
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Deploying(app) => write!(f, "Marathon is still deploying {app}"),
            Why::NotReady {
                ready,
                instances,
                failing,
            } if failing.is_empty() => {
                write!(f, "{ready} of {instances} new tasks running and healthy")
            }
            Why::NotReady {
                ready,
                instances,
                failing,
            } => write!(
                f,
                "{ready} of {instances} new tasks running and healthy; failing health checks: {}",
                failing.join(", ")
            ),
            Why::Unanswered(errors) => write!(f, "balancer not answering: {}", errors.join("; ")),
            Why::NotRouted => f.write_str("not every balancer routes the new tasks yet"),
            Why::Draining => f.write_str("old tasks draining, requests still in flight"),
            Why::NothingDrained => f.write_str("no balancer drains an old task yet"),
        }
    }
}

#[cfg(test)]
#[path = "step_tests.rs"]
mod tests;

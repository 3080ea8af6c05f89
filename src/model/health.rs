//! Which tasks get traffic: Marathon-LB's task-state filter and health filter; and which
//! Marathon health check applies to a port, for mode detection and active checks.

use std::collections::HashMap;
use std::sync::Arc;

use std::time::Duration;

use super::labels::PortLabels;
use super::{ActiveCheck, CheckKind, TaskState};
use crate::marathon::wire;

/// The state of a task that may be routed; `None` for every other state.
///
/// Routed: RUNNING, and optimistically LOST and UNREACHABLE (the task may still be up).
/// A task without a state is treated as running, as Marathon-LB does.
pub fn routable_state(task: &wire::Task) -> Option<TaskState> {
    use wire::TaskStatus as S;
    match task.state {
        None | Some(S::Running) => Some(TaskState::Running),
        Some(S::Lost) => Some(TaskState::Lost),
        Some(S::Unreachable) => Some(TaskState::Unreachable),
        Some(
            S::Staging
            | S::Starting
            | S::Killing
            | S::Finished
            | S::Failed
            | S::Killed
            | S::Error
            | S::Dropped
            | S::Gone
            | S::GoneByOperator
            | S::Unknown
            | S::Other,
        ) => None,
    }
}

/// The last health verdict of each task, so that a task whose results are briefly missing keeps
/// its verdict (Marathon-LB's `healthCheckResultCache`). Carried from one refresh to the next;
/// only tasks present in the latest snapshot are kept, so it never grows without bound.
#[derive(Debug, Clone, Default)]
pub struct HealthMemory {
    verdicts: HashMap<Arc<str>, bool, ahash::RandomState>,
}

impl HealthMemory {
    pub fn len(&self) -> usize {
        self.verdicts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.verdicts.is_empty()
    }
}

/// The verdicts one refresh (or one part of it) reached, to become the memory when it ends.
#[derive(Debug, Default)]
pub struct Verdicts(HashMap<Arc<str>, bool, ahash::RandomState>);

impl Verdicts {
    /// Adds the verdicts of another part of the same refresh.
    pub fn append(&mut self, other: Verdicts) {
        if self.0.is_empty() {
            self.0 = other.0;
        } else {
            self.0.extend(other.0);
        }
    }
}

impl HealthMemory {
    /// Whether a task of an app with health checks is healthy: any result alive; with no
    /// results yet, the last verdict (a brand-new task is not routed until its first success).
    /// The verdict goes into `next`. Reads only: parts of a refresh may ask at the same time.
    pub fn is_healthy(&self, task: &wire::Task, next: &mut Verdicts) -> bool {
        let verdict = match &task.health_check_results {
            Some(results) if !results.is_empty() => results.iter().any(|r| r.alive),
            _ => match self.verdicts.get(&*task.id) {
                Some(&verdict) => verdict,
                None => return false,
            },
        };
        next.0.insert(task.id.clone(), verdict);
        verdict
    }

    /// Replaces the memory with a refresh's verdicts.
    pub fn replace(&mut self, next: Verdicts) {
        self.verdicts = next.0;
    }

    /// Adds a refresh's verdicts to the memory (a refresh of some apps only).
    pub fn extend(&mut self, next: Verdicts) {
        self.verdicts.extend(next.0);
    }
}

/// The balancer's own check of this port's endpoints: the port's Marathon health check, or the
/// one borrowed through `HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX`. COMMAND checks run inside
/// the task and cannot be repeated from here.
pub(super) fn active_check(
    app: &wire::App,
    index: usize,
    labels: &PortLabels,
) -> Option<ActiveCheck> {
    let check = health_check_for(app, index).or_else(|| {
        labels
            .healthcheck_port_index
            .and_then(|i| health_check_for(app, i))
    })?;
    let kind = match check.protocol.as_deref().unwrap_or("HTTP") {
        "HTTP" | "MESOS_HTTP" => CheckKind::Http {
            path: check
                .path
                .clone()
                .filter(|p| p.starts_with('/'))
                .unwrap_or_else(|| "/".to_owned()),
        },
        "TCP" | "MESOS_TCP" | "HTTPS" | "MESOS_HTTPS" => CheckKind::Tcp,
        _ => return None,
    };
    Some(ActiveCheck {
        kind,
        interval: Duration::from_secs(check.interval_seconds.unwrap_or(60).max(1).into()),
        timeout: Duration::from_secs(check.timeout_seconds.unwrap_or(20).max(1).into()),
        fall: check
            .max_consecutive_failures
            .unwrap_or(3)
            .saturating_add(1),
    })
}

/// Marathon-LB's `get_health_check`: the first check with an explicit `port`, else the one
/// whose `portIndex` is this port's index.
pub(super) fn health_check_for(app: &wire::App, index: usize) -> Option<&wire::HealthCheck> {
    app.health_checks
        .iter()
        .find(|c| c.port.is_some_and(|p| p != 0) || c.port_index == Some(index as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, results: Option<&[bool]>) -> wire::Task {
        wire::Task {
            id: id.into(),
            health_check_results: results.map(|r| {
                r.iter()
                    .map(|&alive| wire::HealthCheckResult { alive })
                    .collect()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn any_alive_result_is_healthy() {
        let memory = HealthMemory::default();
        let next = &mut Verdicts::default();
        assert!(memory.is_healthy(&task("a", Some(&[false, true])), next));
        assert!(!memory.is_healthy(&task("b", Some(&[false])), next));
        assert!(
            !memory.is_healthy(&task("c", None), next),
            "new task without results"
        );
    }

    #[test]
    fn last_verdict_survives_missing_results_then_is_forgotten() {
        let mut memory = HealthMemory::default();
        let mut next = Verdicts::default();
        assert!(memory.is_healthy(&task("a", Some(&[true])), &mut next));
        assert!(!memory.is_healthy(&task("b", Some(&[false])), &mut next));
        memory.replace(next);

        // In two parts, as a parallel refresh asks.
        let (mut first, mut second) = (Verdicts::default(), Verdicts::default());
        assert!(
            memory.is_healthy(&task("a", None), &mut first),
            "remembered healthy"
        );
        assert!(
            !memory.is_healthy(&task("b", Some(&[])), &mut second),
            "remembered unhealthy"
        );
        first.append(second);
        memory.replace(first);
        assert_eq!(memory.len(), 2);

        // A refresh without task "b" forgets it.
        let mut next = Verdicts::default();
        assert!(memory.is_healthy(&task("a", None), &mut next));
        memory.replace(next);
        assert_eq!(memory.len(), 1);
    }

    #[test]
    fn states() {
        let with_state = |s: &str| wire::Task {
            state: Some(serde_json::from_value(serde_json::json!(s)).unwrap()),
            ..Default::default()
        };
        assert_eq!(
            routable_state(&with_state("TASK_RUNNING")),
            Some(TaskState::Running)
        );
        assert_eq!(
            routable_state(&with_state("TASK_LOST")),
            Some(TaskState::Lost)
        );
        assert_eq!(
            routable_state(&with_state("TASK_UNREACHABLE")),
            Some(TaskState::Unreachable)
        );
        for s in [
            "TASK_STAGING",
            "TASK_STARTING",
            "TASK_KILLING",
            "TASK_FINISHED",
            "TASK_FAILED",
            "TASK_KILLED",
            "TASK_ERROR",
            "TASK_DROPPED",
            "TASK_GONE",
            "TASK_GONE_BY_OPERATOR",
            "TASK_UNKNOWN",
            "TASK_FROM_THE_FUTURE",
        ] {
            assert_eq!(routable_state(&with_state(s)), None, "{s}");
        }
    }
}

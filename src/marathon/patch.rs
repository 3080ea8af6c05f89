//! What an event carries, applied to the last snapshot at once ("events patch, reads confirm"):
//! a task's new state, host, ports and addresses (`status_update_event`), a health verdict
//! (`health_status_changed_event`, `instance_health_changed_event`), an instance's end
//! (`instance_changed_event` in a terminal condition), an app's removal (`app_terminated_event`).
//! A read of the app follows every patch and wins where it disagrees. An event a patch cannot
//! express (a new app definition, a running instance without ports, deployments, one without the
//! fields a patch needs) patches nothing and is left to the read.

use std::sync::Arc;

use serde::Deserialize;

use super::wire::{AppsSnapshot, HealthCheckResult, Task, TaskIpAddress, TaskStatus};

/// One event's change to the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum EventPatch {
    /// A task of `app_id` as the event reports it: added, replaced, or (in a terminal state)
    /// removed.
    Task { app_id: String, task: TaskUpdate },
    /// The health check verdict on a task, or on every task of an instance.
    Health {
        app_id: String,
        of: TaskRef,
        alive: bool,
    },
    /// An instance ended: its tasks leave the app.
    InstanceGone { app_id: String, instance_id: String },
    /// The app is gone.
    AppGone { app_id: String },
}

/// What a health event names: a task (Marathon ≤ 1.3) or an instance (1.4+), whose task ids
/// differ from its own id.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskRef {
    Task(String),
    Instance(String),
}

impl TaskRef {
    fn names(&self, task_id: &str) -> bool {
        match self {
            TaskRef::Task(id) => id == task_id,
            TaskRef::Instance(id) => of_instance(task_id, id),
        }
    }
}

/// Whether a task id belongs to an instance, as Marathon's `Task.Id` parses them: instance-era
/// task ids are `<instance>._app[.<incarnation>]`; a legacy `<app>.<uuid>` (or `<app>_<uuid>`)
/// belongs to instance `<app>.marathon-<uuid>`.
fn of_instance(task_id: &str, instance_id: &str) -> bool {
    if let Some(rest) = task_id.strip_prefix(instance_id) {
        return rest.is_empty() || rest.starts_with('.');
    }
    let Some((app, uuid)) = instance_id.rsplit_once(".marathon-") else {
        return false;
    };
    task_id.len() == app.len() + 1 + uuid.len()
        && task_id.starts_with(app)
        && task_id.ends_with(uuid)
        && matches!(task_id.as_bytes()[app.len()], b'.' | b'_')
}

/// The fields of `status_update_event` a task needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskUpdate {
    pub id: Arc<str>,
    pub state: TaskStatus,
    pub host: Option<String>,
    pub ports: Vec<u32>,
    pub ip_addresses: Vec<TaskIpAddress>,
    pub version: Option<String>,
}

/// The patch an event carries, if it carries one.
pub fn patch_of(kind: &str, data: &str) -> Option<EventPatch> {
    match kind {
        "status_update_event" => status_update(data),
        "health_status_changed_event" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Health {
                app_id: String,
                task_id: Option<String>,
                instance_id: Option<String>,
                alive: bool,
            }
            let h: Health = serde_json::from_str(data).ok()?;
            absolute(&h.app_id)?;
            let of = match (h.instance_id, h.task_id) {
                (Some(instance), _) => TaskRef::Instance(instance),
                (None, Some(task)) => TaskRef::Task(task),
                (None, None) => return None,
            };
            Some(EventPatch::Health {
                app_id: h.app_id,
                of,
                alive: h.alive,
            })
        }
        "instance_health_changed_event" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Health {
                run_spec_id: String,
                instance_id: String,
                // `null` while Marathon does not know yet: left to the read.
                healthy: Option<bool>,
            }
            let h: Health = serde_json::from_str(data).ok()?;
            absolute(&h.run_spec_id)?;
            Some(EventPatch::Health {
                app_id: h.run_spec_id,
                of: TaskRef::Instance(h.instance_id),
                alive: h.healthy?,
            })
        }
        "instance_changed_event" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Changed {
                run_spec_id: String,
                instance_id: String,
                condition: String,
            }
            let c: Changed = serde_json::from_str(data).ok()?;
            absolute(&c.run_spec_id)?;
            // Without ports a running instance cannot be routed from the event alone; its
            // end needs none.
            let ended = matches!(
                c.condition.as_str(),
                "Killed" | "Finished" | "Failed" | "Error" | "Gone" | "Dropped"
            );
            ended.then_some(EventPatch::InstanceGone {
                app_id: c.run_spec_id,
                instance_id: c.instance_id,
            })
        }
        "app_terminated_event" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Gone {
                app_id: String,
            }
            let g: Gone = serde_json::from_str(data).ok()?;
            absolute(&g.app_id)?;
            Some(EventPatch::AppGone { app_id: g.app_id })
        }
        _ => None,
    }
}

fn status_update(data: &str) -> Option<EventPatch> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Status {
        app_id: String,
        task_id: String,
        task_status: TaskStatus,
        #[serde(default)]
        host: Option<String>,
        #[serde(default)]
        ports: Option<Vec<u32>>,
        #[serde(default)]
        ip_addresses: Option<Vec<TaskIpAddress>>,
        #[serde(default)]
        version: Option<String>,
    }
    let s: Status = serde_json::from_str(data).ok()?;
    // Without ports a running task cannot be routed from the event alone.
    let ports = match (s.ports, s.task_status) {
        (Some(ports), _) => ports,
        (None, TaskStatus::Running) => return None,
        (None, _) => Vec::new(),
    };
    absolute(&s.app_id)?;
    Some(EventPatch::Task {
        app_id: s.app_id,
        task: TaskUpdate {
            id: s.task_id.into(),
            state: s.task_status,
            host: s.host,
            ports,
            ip_addresses: s.ip_addresses.unwrap_or_default(),
            version: s.version,
        },
    })
}

fn absolute(id: &str) -> Option<()> {
    id.starts_with('/').then_some(())
}

impl EventPatch {
    pub fn app_id(&self) -> &str {
        match self {
            EventPatch::Task { app_id, .. }
            | EventPatch::Health { app_id, .. }
            | EventPatch::InstanceGone { app_id, .. }
            | EventPatch::AppGone { app_id } => app_id,
        }
    }
}

impl AppsSnapshot {
    /// Applies an event's patch; whether the snapshot changed. An app the snapshot does not
    /// hold is left to its read (the event says too little to make one up).
    pub fn apply(&mut self, patch: &EventPatch) -> bool {
        match patch {
            EventPatch::AppGone { app_id } => self.patch(app_id, None),
            EventPatch::Task { app_id, task } => {
                let Some(app) = self.app_mut(app_id) else {
                    return false;
                };
                let at = app.tasks.iter().position(|t| t.id == task.id);
                if is_terminal(task.state) {
                    return match at {
                        Some(at) => {
                            app.tasks.remove(at);
                            true
                        }
                        None => false,
                    };
                }
                let health = at.and_then(|at| app.tasks[at].health_check_results.clone());
                let updated = Task {
                    id: task.id.clone(),
                    host: task.host.clone(),
                    state: Some(task.state),
                    ports: task.ports.clone(),
                    ip_addresses: task.ip_addresses.clone(),
                    // A task keeps the verdicts it had; a new one has none until its check runs.
                    health_check_results: health,
                    version: task.version.clone(),
                };
                match at {
                    // The same report again (Marathon repeats them on reconciliation).
                    Some(at) if app.tasks[at] == updated => return false,
                    Some(at) => app.tasks[at] = updated,
                    None => app.tasks.push(updated),
                }
                true
            }
            EventPatch::Health { app_id, of, alive } => {
                // Verdicts count only for an app with health checks (and the read of one
                // without lists none).
                let Some(app) = self.app_mut(app_id).filter(|a| !a.health_checks.is_empty()) else {
                    return false;
                };
                let verdict = Some(vec![HealthCheckResult { alive: *alive }]);
                let mut changed = false;
                for task in app.tasks.iter_mut().filter(|t| of.names(&t.id)) {
                    if task.health_check_results != verdict {
                        task.health_check_results = verdict.clone();
                        changed = true;
                    }
                }
                changed
            }
            EventPatch::InstanceGone {
                app_id,
                instance_id,
            } => {
                let Some(app) = self.app_mut(app_id) else {
                    return false;
                };
                let before = app.tasks.len();
                app.tasks.retain(|t| !of_instance(&t.id, instance_id));
                app.tasks.len() != before
            }
        }
    }

    fn app_mut(&mut self, id: &str) -> Option<&mut super::wire::App> {
        let at = self.position(id)?;
        Some(self.apps[at].changed())
    }
}

/// States after which a task never runs again: it leaves the app's task list.
fn is_terminal(state: TaskStatus) -> bool {
    !matches!(
        state,
        TaskStatus::Staging
            | TaskStatus::Starting
            | TaskStatus::Running
            | TaskStatus::Killing
            | TaskStatus::Lost
            | TaskStatus::Unreachable
            | TaskStatus::Unknown
    )
}

#[cfg(test)]
mod tests;

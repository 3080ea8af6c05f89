//! The state rendered as Marathon renders it: app definitions, AppInfo with counts and tasks
//! (`/v2/apps?embed=apps.tasks`), and the events a task's change emits.

use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};

use super::{emit, App, Emit, Task};

/// The apps of one `/v2/apps` answer, taken under the lock and rendered after it.
#[derive(Debug)]
pub struct Listing(pub(super) Vec<Arc<App>>);

impl Listing {
    /// The `{"apps": [...]}` document, sorted by id; tasks only when embedded.
    pub fn to_json(&self, embed_tasks: bool) -> Value {
        let apps: Vec<Value> = self
            .0
            .iter()
            .map(|app| app.info_json(embed_tasks))
            .collect();
        json!({ "apps": apps })
    }

    /// The same document written straight to bytes: a list of thousands of apps is rendered
    /// without building its tree first (Marathon's own rendering costs the balancer nothing;
    /// the simulator's shares its machine).
    pub fn to_bytes(&self, embed_tasks: bool) -> Vec<u8> {
        struct Apps<'a>(&'a Listing, bool);
        impl Serialize for Apps<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(1))?;
                let apps: Vec<Info<'_>> = self.0 .0.iter().map(|app| Info(app, self.1)).collect();
                map.serialize_entry("apps", &apps)?;
                map.end()
            }
        }
        serde_json::to_vec(&Apps(self, embed_tasks)).unwrap_or_default()
    }
}

/// AppInfo as [`App::info_json`] renders it, written as it goes.
struct Info<'a>(&'a App, bool);

impl Serialize for Info<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (app, embed_tasks) = (self.0, self.1);
        let mut map = s.serialize_map(None)?;
        for (key, value) in &app.definition {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry("version", &app.version)?;
        map.serialize_entry(
            "versionInfo",
            &json!({
                "lastScalingAt": app.last_scaling_at,
                "lastConfigChangeAt": app.last_config_change_at,
            }),
        )?;
        let counts = app.counts();
        map.serialize_entry("tasksStaged", &counts.staged)?;
        map.serialize_entry("tasksRunning", &counts.running)?;
        map.serialize_entry("tasksHealthy", &counts.healthy)?;
        map.serialize_entry("tasksUnhealthy", &counts.unhealthy)?;
        map.serialize_entry("deployments", &app.deployments_json())?;
        if embed_tasks {
            let checks = app.health_check_count();
            let tasks: Vec<Value> = app
                .tasks
                .iter()
                .map(|t| task_json(&app.definition, t, checks))
                .collect();
            map.serialize_entry("tasks", &tasks)?;
        }
        map.end()
    }
}

/// An app's task counts, as AppInfo gives them.
struct Counts {
    staged: usize,
    running: usize,
    healthy: usize,
    unhealthy: usize,
}

impl App {
    /// The definition as Marathon echoes it: what was put, plus version and versionInfo.
    pub(super) fn definition_json(&self) -> Value {
        let mut out = self.definition.clone();
        out.insert("version".to_owned(), Value::from(self.version.as_str()));
        out.insert(
            "versionInfo".to_owned(),
            json!({
                "lastScalingAt": self.last_scaling_at,
                "lastConfigChangeAt": self.last_config_change_at,
            }),
        );
        Value::Object(out)
    }

    /// AppInfo: the definition plus counts and deployments (always) and tasks (embedded).
    pub(super) fn info_json(&self, embed_tasks: bool) -> Value {
        let mut out = match self.definition_json() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let checks = self.health_check_count();
        let counts = self.counts();
        out.insert("tasksStaged".to_owned(), counts.staged.into());
        out.insert("tasksRunning".to_owned(), counts.running.into());
        out.insert("tasksHealthy".to_owned(), counts.healthy.into());
        out.insert("tasksUnhealthy".to_owned(), counts.unhealthy.into());
        out.insert("deployments".to_owned(), self.deployments_json());
        if embed_tasks {
            let tasks = self
                .tasks
                .iter()
                .map(|t| task_json(&self.definition, t, checks))
                .collect();
            out.insert("tasks".to_owned(), Value::Array(tasks));
        }
        Value::Object(out)
    }

    /// AppInfo's `deployments`: the one in progress, if any.
    fn deployments_json(&self) -> Value {
        match &self.deployment {
            Some(id) => json!([{ "id": id }]),
            None => Value::Array(Vec::new()),
        }
    }

    fn counts(&self) -> Counts {
        let checks = self.health_check_count();
        let count = |f: &dyn Fn(&Task) -> bool| self.tasks.iter().filter(|t| f(t)).count();
        let health = |t: &Task| t.health.as_ref().filter(|_| checks > 0).map(|h| h.alive);
        Counts {
            staged: count(&|t| matches!(t.state.as_str(), "TASK_STAGING" | "TASK_STARTING")),
            running: count(&|t| t.state == "TASK_RUNNING"),
            healthy: count(&|t| health(t) == Some(true)),
            unhealthy: count(&|t| health(t) == Some(false)),
        }
    }

    pub(super) fn health_check_count(&self) -> usize {
        self.definition
            .get("healthChecks")
            .and_then(Value::as_array)
            .map_or(0, Vec::len)
    }
}

fn task_json(definition: &Map<String, Value>, task: &Task, checks: usize) -> Value {
    let mut out = json!({
        "id": task.id,
        "appId": definition.get("id"),
        "host": task.host,
        "ports": task.ports,
        "ipAddresses": ip_addresses(&task.ip_addresses),
        "state": task.state,
        "stagedAt": task.staged_at,
        "version": task.version,
        "slaveId": task.agent_id,
    });
    if let Some(started_at) = &task.started_at {
        out["startedAt"] = Value::from(started_at.as_str());
    }
    // Absent until the first result, and only for apps that have health checks.
    if let Some(health) = task.health.as_ref().filter(|_| checks > 0) {
        let result = json!({
            "alive": health.alive,
            "consecutiveFailures": health.consecutive_failures,
            "firstSuccess": health.first_success,
            "lastFailure": health.last_failure,
            "lastSuccess": health.last_success,
            "lastFailureCause": (!health.alive).then_some("simulated health check failure"),
            "instanceId": task.instance_id,
        });
        out["healthCheckResults"] = Value::Array(vec![result; checks]);
    }
    out
}

/// `status_update_event` and `instance_changed_event` for a task's current state.
pub(super) fn task_events(app_id: &str, task: &Task) -> Vec<Emit> {
    vec![
        emit(
            "status_update_event",
            json!({
                "slaveId": task.agent_id,
                "taskId": task.id,
                "taskStatus": task.state,
                "message": "",
                "appId": app_id,
                "host": task.host,
                "ipAddresses": ip_addresses(&task.ip_addresses),
                "ports": task.ports,
                "version": task.version,
            }),
        ),
        emit(
            "instance_changed_event",
            json!({
                "instanceId": task.instance_id,
                "condition": condition(&task.state),
                "runSpecId": app_id,
                "agentId": task.agent_id,
                "host": task.host,
                "runSpecVersion": task.version,
            }),
        ),
    ]
}

fn ip_addresses(addresses: &[String]) -> Vec<Value> {
    addresses
        .iter()
        .map(|ip| {
            let protocol = if ip.contains(':') { "IPv6" } else { "IPv4" };
            json!({ "ipAddress": ip, "protocol": protocol })
        })
        .collect()
}

/// Marathon's instance condition for a Mesos task state.
fn condition(state: &str) -> &'static str {
    match state {
        "TASK_STAGING" => "Staging",
        "TASK_STARTING" => "Starting",
        "TASK_RUNNING" => "Running",
        "TASK_KILLING" => "Killing",
        "TASK_KILLED" => "Killed",
        "TASK_FINISHED" => "Finished",
        "TASK_FAILED" => "Failed",
        "TASK_ERROR" => "Error",
        "TASK_UNREACHABLE" | "TASK_LOST" => "Unreachable",
        "TASK_GONE" | "TASK_GONE_BY_OPERATOR" => "Gone",
        "TASK_DROPPED" => "Dropped",
        _ => "Unknown",
    }
}

//! The state rendered as Marathon renders it: app definitions, AppInfo with counts and tasks
//! (`/v2/apps?embed=apps.tasks`), and the events a task's change emits.

use serde_json::{json, Map, Value};

use super::{emit, App, Emit, Task};

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
        let count = |f: &dyn Fn(&Task) -> bool| self.tasks.iter().filter(|t| f(t)).count();
        let health = |t: &Task| t.health.as_ref().filter(|_| checks > 0).map(|h| h.alive);
        out.insert(
            "tasksStaged".to_owned(),
            count(&|t| matches!(t.state.as_str(), "TASK_STAGING" | "TASK_STARTING")).into(),
        );
        out.insert(
            "tasksRunning".to_owned(),
            count(&|t| t.state == "TASK_RUNNING").into(),
        );
        out.insert(
            "tasksHealthy".to_owned(),
            count(&|t| health(t) == Some(true)).into(),
        );
        out.insert(
            "tasksUnhealthy".to_owned(),
            count(&|t| health(t) == Some(false)).into(),
        );
        out.insert("deployments".to_owned(), Value::Array(Vec::new()));
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

    fn health_check_count(&self) -> usize {
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

//! The apps and tasks every node shares, and the events each change makes Marathon emit;
//! `render.rs` renders them the way Marathon 1.5+ renders `/v2/apps?embed=apps.tasks`.
//!
//! Pure bookkeeping: no I/O. Every change returns its events so the caller can publish them
//! while still holding the state lock (a refetch after an event then always sees the change,
//! and events leave in the order the changes happened).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

pub(super) use api::{Ended, Refused};
use render::task_events;
pub(super) use render::Listing;

mod api;
mod render;

/// A task to start: where it runs and what Marathon reports for it.
#[derive(Clone, Debug)]
pub struct TaskSpec {
    /// The agent's hostname (or IP, as on most DC/OS clusters).
    pub host: String,
    /// Host ports.
    pub ports: Vec<u16>,
    /// Reported as `ipAddresses` (protocol IPv6 when the address contains a colon).
    pub ip_addresses: Vec<String>,
    /// A Mesos `TASK_*` state.
    pub state: String,
}

impl TaskSpec {
    /// A `TASK_RUNNING` task. Like a host-networking task, it reports the host as its IP
    /// address when the host is an IP literal.
    pub fn running(host: impl Into<String>, ports: Vec<u16>) -> TaskSpec {
        let host = host.into();
        let ip_addresses = match host.parse::<IpAddr>() {
            Ok(_) => vec![host.clone()],
            Err(_) => Vec::new(),
        };
        TaskSpec {
            host,
            ports,
            ip_addresses,
            state: "TASK_RUNNING".to_owned(),
        }
    }
}

/// An event a change emits: its `eventType` and its fields (without eventType/timestamp).
#[derive(Debug)]
pub(super) struct Emit {
    pub kind: &'static str,
    pub data: Value,
}

fn emit(kind: &'static str, data: Value) -> Emit {
    Emit { kind, data }
}

/// Fields Marathon computes; a definition handed to `put` never sets them.
const COMPUTED: &[&str] = &[
    "version",
    "versionInfo",
    "tasks",
    "tasksRunning",
    "tasksHealthy",
    "tasksUnhealthy",
    "tasksStaged",
    "deployments",
];

#[derive(Debug, Default, Clone)]
pub(super) struct Apps {
    /// Shared with the listings being rendered: a change copies only the app it changes, and
    /// only while a listing holds it.
    apps: BTreeMap<String, Arc<App>>,
    /// The app of each task id, as Marathon's instance tracker finds it (not by a scan).
    owners: HashMap<String, String>,
    /// Agent ids by host, so every task on one host reports the same `slaveId`.
    agents: BTreeMap<String, String>,
    /// Last version handed out, in ms: versions strictly increase even within one millisecond.
    last_version_ms: i64,
}

#[derive(Debug, Clone)]
struct App {
    definition: Map<String, Value>,
    version: String,
    last_scaling_at: String,
    last_config_change_at: String,
    tasks: Vec<Task>,
    /// Changed through the API: the scheduler launches, stops and checks its tasks.
    managed: bool,
    /// The deployment in progress, until every instance runs (healthy, where checked).
    deployment: Option<String>,
}

#[derive(Debug, Clone)]
struct Task {
    id: String,
    instance_id: String,
    host: String,
    ports: Vec<u16>,
    ip_addresses: Vec<String>,
    state: String,
    staged_at: String,
    started_at: Option<String>,
    version: String,
    agent_id: String,
    health: Option<Health>,
}

#[derive(Debug, Clone)]
struct Health {
    alive: bool,
    consecutive_failures: u32,
    first_success: Option<String>,
    last_success: Option<String>,
    last_failure: Option<String>,
}

impl Apps {
    /// Creates or replaces an app definition; its tasks are kept.
    pub fn put(&mut self, definition: Value) -> Result<Vec<Emit>, &'static str> {
        let Value::Object(mut definition) = definition else {
            return Err("an app definition must be a JSON object");
        };
        let id = match definition.get("id").and_then(Value::as_str) {
            Some(id) => normalize_id(id).ok_or("an app id must not be empty")?,
            None => return Err("an app definition needs a string \"id\""),
        };
        for key in COMPUTED {
            definition.remove(*key);
        }
        definition.insert("id".to_owned(), Value::String(id.clone()));
        definition
            .entry("instances")
            .or_insert_with(|| Value::from(1));
        definition
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        let version = self.next_version();
        match self.apps.get_mut(&id).map(Arc::make_mut) {
            Some(app) => {
                // Marathon's versionInfo: a change of `instances` alone is a scaling.
                if !same_but_instances(&app.definition, &definition) {
                    app.last_config_change_at = version.clone();
                }
                app.last_scaling_at = version.clone();
                app.definition = definition;
                app.version = version.clone();
            }
            None => {
                let app = App {
                    definition,
                    version: version.clone(),
                    last_scaling_at: version.clone(),
                    last_config_change_at: version.clone(),
                    tasks: Vec::new(),
                    managed: false,
                    deployment: None,
                };
                self.apps.insert(id.clone(), Arc::new(app));
            }
        }
        let app_definition = self.apps.get(&id).map(|app| app.definition_json());
        let plan_id = uuid();
        Ok(vec![
            emit(
                "api_post_event",
                json!({
                    "clientIp": "127.0.0.1",
                    "uri": format!("/v2/apps{id}"),
                    "appDefinition": app_definition,
                }),
            ),
            emit(
                "deployment_success",
                json!({
                    "id": plan_id,
                    "plan": {"id": plan_id, "steps": [], "version": version},
                }),
            ),
        ])
    }

    /// Removes an app and its tasks.
    pub fn remove(&mut self, id: &str) -> Option<Vec<Emit>> {
        let id = normalize_id(id)?;
        let app = self.apps.remove(&id)?;
        for task in &app.tasks {
            self.owners.remove(&task.id);
        }
        Some(vec![emit("app_terminated_event", json!({ "appId": id }))])
    }

    /// Starts a task of an existing app; returns its task id.
    pub fn start_task(&mut self, app_id: &str, spec: TaskSpec) -> Option<(String, Vec<Emit>)> {
        let app_id = normalize_id(app_id)?;
        let agent_id = self.agent_id(&spec.host);
        let app = Arc::make_mut(self.apps.get_mut(&app_id)?);
        let instance_id = format!("{}.instance-{}", safe_id(&app_id), uuid());
        let now = now_iso();
        let started_at = (spec.state == "TASK_RUNNING").then(|| now.clone());
        let task = Task {
            id: format!("{instance_id}._app.1"),
            instance_id,
            host: spec.host,
            ports: spec.ports,
            ip_addresses: spec.ip_addresses,
            state: spec.state,
            staged_at: now,
            started_at,
            version: app.version.clone(),
            agent_id,
            health: None,
        };
        let events = task_events(&app_id, &task);
        let id = task.id.clone();
        app.tasks.push(task);
        self.owners.insert(id.clone(), app_id);
        Some((id, events))
    }

    /// Moves a task to another `TASK_*` state (e.g. staging → running, or lost).
    pub fn set_task_state(&mut self, task_id: &str, state: &str) -> Option<Vec<Emit>> {
        let (app_id, app) = self.owner(task_id)?;
        let task = app.tasks.iter_mut().find(|t| t.id == task_id)?;
        task.state = state.to_owned();
        if state == "TASK_RUNNING" && task.started_at.is_none() {
            task.started_at = Some(now_iso());
        }
        Some(task_events(app_id, task))
    }

    /// Kills a task: Marathon reports `TASK_KILLED` and drops it from the app.
    pub fn kill_task(&mut self, task_id: &str) -> Option<Vec<Emit>> {
        let (app_id, app) = self.owner(task_id)?;
        let index = app.tasks.iter().position(|t| t.id == task_id)?;
        let mut task = app.tasks.remove(index);
        task.state = "TASK_KILLED".to_owned();
        let events = task_events(app_id, &task);
        self.owners.remove(task_id);
        Some(events)
    }

    /// Records the result of the task's health checks (all of them `alive`).
    pub fn set_health(&mut self, task_id: &str, alive: bool) -> Option<Vec<Emit>> {
        let (app_id, app) = self.owner(task_id)?;
        let task = app.tasks.iter_mut().find(|t| t.id == task_id)?;
        let now = now_iso();
        let health = task.health.get_or_insert(Health {
            alive,
            consecutive_failures: 0,
            first_success: None,
            last_success: None,
            last_failure: None,
        });
        health.alive = alive;
        if alive {
            health.consecutive_failures = 0;
            health.first_success.get_or_insert_with(|| now.clone());
            health.last_success = Some(now);
        } else {
            health.consecutive_failures += 1;
            health.last_failure = Some(now);
        }
        Some(vec![
            emit(
                "health_status_changed_event",
                json!({
                    "appId": app_id,
                    "instanceId": task.instance_id,
                    "version": task.version,
                    "alive": alive,
                }),
            ),
            emit(
                "instance_health_changed_event",
                json!({
                    "instanceId": task.instance_id,
                    "runSpecId": app_id,
                    "healthy": alive,
                    "runSpecVersion": task.version,
                }),
            ),
        ])
    }

    /// The `{"apps": [...]}` document, sorted by id; tasks only when embedded.
    pub fn to_json(&self, embed_tasks: bool) -> Value {
        self.listing().to_json(embed_tasks)
    }

    /// The apps as they are now, to render after the lock is let go.
    pub fn listing(&self) -> Listing {
        Listing(self.apps.values().cloned().collect())
    }

    /// One app as `GET /v2/apps/{id}` renders it (without the `{"app": ...}` wrapper).
    pub fn app_json(&self, id: &str, embed_tasks: bool) -> Option<Value> {
        let app = self.apps.get(&normalize_id(id)?)?;
        Some(app.info_json(embed_tasks))
    }

    fn next_version(&mut self) -> String {
        let now = DateTime::<Utc>::from(SystemTime::now()).timestamp_millis();
        self.last_version_ms = now.max(self.last_version_ms + 1);
        match DateTime::<Utc>::from_timestamp_millis(self.last_version_ms) {
            Some(time) => time.to_rfc3339_opts(SecondsFormat::Millis, true),
            None => now_iso(),
        }
    }

    /// The app a task belongs to, and its id.
    fn owner(&mut self, task_id: &str) -> Option<(&String, &mut App)> {
        let app_id = self.owners.get(task_id)?;
        Some((app_id, Arc::make_mut(self.apps.get_mut(app_id)?)))
    }

    fn agent_id(&mut self, host: &str) -> String {
        let next = self.agents.len();
        self.agents
            .entry(host.to_owned())
            .or_insert_with(|| format!("5e1a7f00-0000-4000-8000-00000000000a-S{next}"))
            .clone()
    }
}

/// Whether two definitions differ at most in `instances`.
fn same_but_instances(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    let strip = |m: &Map<String, Value>| {
        let mut m = m.clone();
        m.remove("instances");
        m
    };
    strip(a) == strip(b)
}

/// Marathon ids are absolute paths: `web/` and `/web` are `/web`.
pub(super) fn normalize_id(id: &str) -> Option<String> {
    let trimmed = id.trim().trim_matches('/');
    (!trimmed.is_empty()).then(|| format!("/{trimmed}"))
}

/// The id as it appears in task ids: no leading slash, `/` → `_`.
fn safe_id(app_id: &str) -> String {
    app_id.trim_start_matches('/').replace('/', "_")
}

/// ISO-8601 UTC with milliseconds, as Marathon writes every timestamp.
pub(super) fn now_iso() -> String {
    DateTime::<Utc>::from(SystemTime::now()).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A random version-4-shaped UUID (ids only need to be unique, not standard).
pub(super) fn uuid() -> String {
    let n = fastrand::u128(..);
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

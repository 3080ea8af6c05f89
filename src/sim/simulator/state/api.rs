//! What Marathon's write API does to the state: create, update (scale), delete an app, kill
//! tasks (optionally scaling down), and the deployments those changes start. Apps changed
//! through the API are *managed*: the scheduler (`scheduler.rs`) launches and stops their tasks
//! and health-checks them; apps put by the setters keep the tasks the caller starts.
//!
//! A deployment lasts until the app runs as many tasks as it asks for, each healthy when it
//! has health checks; `deployment_success` is emitted then (not when the change is made).

use serde_json::{json, Map, Value};

use super::{emit, normalize_id, uuid, Apps, Emit};

/// An API request the state refuses: the status and Marathon's message.
#[derive(Debug)]
pub struct Refused(pub u16, pub String);

/// Where a task that ended ran: what the launcher stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub host: String,
    pub ports: Vec<u16>,
}

/// A task the scheduler should health-check: its id, the URL to GET and the app's check count.
#[derive(Debug, Clone)]
pub struct CheckTarget {
    pub task_id: String,
    pub url: String,
    pub alive: Option<bool>,
}

impl Apps {
    /// `POST /v2/apps`: a new app (409 when the id exists; 422 when a service port is taken).
    pub fn create(&mut self, definition: Value) -> Result<(Value, Vec<Emit>), Refused> {
        let id = id_of(&definition)?;
        if self.apps.contains_key(&id) {
            return Err(Refused(
                409,
                format!("An app with id [{id}] already exists."),
            ));
        }
        self.check_service_ports(&id, &definition)?;
        let mut events = self
            .put(definition)
            .map_err(|why| Refused(422, why.into()))?;
        let deployment = self.start_deployment(&id);
        events.retain(|e| e.kind != "deployment_success");
        let mut app = self
            .apps
            .get(&id)
            .map(|app| app.definition_json())
            .unwrap_or_default();
        app["deployments"] = json!([{ "id": deployment }]);
        Ok((app, events))
    }

    /// `PUT /v2/apps/{id}`: the given fields replace the app's (Marathon's partial update; an
    /// app that does not exist is created). Returns the deployment id and whether it created.
    pub fn update(&mut self, id: &str, patch: Value) -> Result<(String, bool, Vec<Emit>), Refused> {
        let Value::Object(patch) = patch else {
            return Err(Refused(422, "the body must be a JSON object".into()));
        };
        let id = normalize_id(id).ok_or_else(|| Refused(422, "empty app id".into()))?;
        let (mut definition, created) = match self.apps.get(&id) {
            Some(app) => (app.definition.clone(), false),
            None => (Map::new(), true),
        };
        definition.extend(patch);
        definition.insert("id".into(), Value::String(id.clone()));
        let definition = Value::Object(definition);
        self.check_service_ports(&id, &definition)?;
        let mut events = self
            .put(definition)
            .map_err(|why| Refused(422, why.into()))?;
        events.retain(|e| e.kind != "deployment_success");
        let deployment = self.start_deployment(&id);
        Ok((deployment, created, events))
    }

    /// `DELETE /v2/apps/{id}`: kills every task, then removes the app.
    pub fn delete(&mut self, id: &str) -> Option<(String, Vec<Ended>, Vec<Emit>)> {
        let id = normalize_id(id)?;
        let task_ids: Vec<String> = self
            .apps
            .get(&id)?
            .tasks
            .iter()
            .map(|t| t.id.clone())
            .collect();
        let (ended, mut events) = self.kill_tasks(&task_ids, false);
        events.extend(self.remove(&id)?);
        Some((uuid(), ended, events))
    }

    /// `POST /v2/tasks/delete`: kills the tasks that exist; with `scale`, each app's
    /// `instances` goes down by the number of its tasks killed (a scaling: new version and
    /// `lastScalingAt`).
    pub fn kill_tasks(&mut self, ids: &[String], scale: bool) -> (Vec<Ended>, Vec<Emit>) {
        let mut ended = Vec::new();
        let mut events = Vec::new();
        let mut scaled: Vec<String> = Vec::new();
        for id in ids {
            let Some(app_id) = self.owners.get(id).cloned() else {
                continue;
            };
            let spot = self.apps.get(&app_id).and_then(|app| {
                app.tasks.iter().find(|t| &t.id == id).map(|t| Ended {
                    host: t.host.clone(),
                    ports: t.ports.clone(),
                })
            });
            if let Some(killed) = self.kill_task(id) {
                ended.extend(spot);
                events.extend(killed);
                scaled.push(app_id);
            }
        }
        if scale {
            for app_id in scaled {
                let version = self.next_version();
                if let Some(app) = self.apps.get_mut(&app_id).map(std::sync::Arc::make_mut) {
                    let instances = app.definition.get("instances").and_then(Value::as_u64);
                    let instances = instances.unwrap_or(1).saturating_sub(1);
                    app.definition.insert("instances".into(), instances.into());
                    app.version = version.clone();
                    app.last_scaling_at = version;
                }
            }
        }
        (ended, events)
    }

    /// Where every task of a managed app runs (stopped when the simulator shuts down).
    pub fn managed_tasks(&self) -> Vec<Ended> {
        self.apps
            .values()
            .filter(|app| app.managed)
            .flat_map(|app| &app.tasks)
            .map(|t| Ended {
                host: t.host.clone(),
                ports: t.ports.clone(),
            })
            .collect()
    }

    /// `GET /v2/deployments`: the deployments in progress.
    pub fn deployments_json(&self) -> Value {
        let list: Vec<Value> = self
            .apps
            .iter()
            .filter_map(|(id, app)| {
                let deployment = app.deployment.as_ref()?;
                Some(json!({
                    "id": deployment,
                    "version": app.version,
                    "affectedApps": [id],
                    "steps": [],
                    "currentActions": [{"action": "ScaleApplication", "app": id}],
                    "currentStep": 1,
                    "totalSteps": 1,
                }))
            })
            .collect();
        Value::Array(list)
    }

    /// For each managed app: its definition and how many tasks it lacks (`> 0`: launch) or
    /// runs too many (`< 0`: the youngest are killed).
    pub fn imbalances(&self) -> Vec<(String, Value, i64)> {
        self.apps
            .iter()
            .filter(|(_, app)| app.managed)
            .filter_map(|(id, app)| {
                let instances = app.definition.get("instances").and_then(Value::as_i64)?;
                let diff = instances - app.tasks.len() as i64;
                (diff != 0).then(|| (id.clone(), Value::Object(app.definition.clone()), diff))
            })
            .collect()
    }

    /// The `count` youngest tasks of `app_id` (Marathon's default `killSelection`).
    pub fn youngest(&self, app_id: &str, count: usize) -> Vec<String> {
        self.apps.get(app_id).map_or_else(Vec::new, |app| {
            app.tasks
                .iter()
                .rev()
                .take(count)
                .map(|t| t.id.clone())
                .collect()
        })
    }

    /// Every task of a managed app with an HTTP health check (the first one), with its URL.
    pub fn check_targets(&self) -> Vec<CheckTarget> {
        let mut out = Vec::new();
        for app in self.apps.values().filter(|app| app.managed) {
            let Some(check) = app
                .definition
                .get("healthChecks")
                .and_then(Value::as_array)
                .and_then(|checks| checks.first())
            else {
                continue;
            };
            let protocol = check
                .get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("HTTP");
            let index = check.get("portIndex").and_then(Value::as_u64).unwrap_or(0) as usize;
            let path = check.get("path").and_then(Value::as_str).unwrap_or("/");
            for task in &app.tasks {
                let port = task.ports.get(index).copied();
                let url = match (protocol, port) {
                    ("HTTP" | "MESOS_HTTP", Some(port)) => {
                        format!("http://{}:{port}{path}", task.host)
                    }
                    // Anything else (TCP, COMMAND) is reported healthy once running.
                    _ => String::new(),
                };
                out.push(CheckTarget {
                    task_id: task.id.clone(),
                    url,
                    alive: task.health.as_ref().map(|h| h.alive),
                });
            }
        }
        out
    }

    /// Ends the deployments whose apps run every instance, healthy where checked:
    /// `deployment_success` for each.
    pub fn finish_deployments(&mut self) -> Vec<Emit> {
        let mut events = Vec::new();
        for (id, app) in self.apps.iter_mut() {
            let Some(deployment) = app.deployment.clone() else {
                continue;
            };
            let instances = app.definition.get("instances").and_then(Value::as_u64);
            let checked = app.health_check_count() > 0;
            let ready = app
                .tasks
                .iter()
                .filter(|t| t.state == "TASK_RUNNING")
                .filter(|t| !checked || t.health.as_ref().is_some_and(|h| h.alive))
                .count();
            if instances != Some(ready as u64) || app.tasks.len() != ready {
                continue;
            }
            let app = std::sync::Arc::make_mut(app);
            app.deployment = None;
            events.push(emit(
                "deployment_success",
                json!({
                    "id": deployment,
                    "plan": {"id": deployment, "steps": [], "version": app.version,
                             "target": {"apps": [{"id": id}]}},
                }),
            ));
        }
        events
    }

    fn start_deployment(&mut self, id: &str) -> String {
        let deployment = uuid();
        if let Some(app) = self.apps.get_mut(id).map(std::sync::Arc::make_mut) {
            app.managed = true;
            app.deployment = Some(deployment.clone());
        }
        deployment
    }

    /// Marathon refuses a service port another app holds (why `zdd.py` needs an alternate one).
    fn check_service_ports(&self, id: &str, definition: &Value) -> Result<(), Refused> {
        let wanted = service_ports(definition);
        for (other_id, other) in &self.apps {
            if other_id == id {
                continue;
            }
            let taken = service_ports(&Value::Object(other.definition.clone()));
            if let Some(port) = wanted.iter().find(|p| taken.contains(p)) {
                return Err(Refused(
                    422,
                    format!("Requested service port {port} conflicts with a service port in use by app {other_id}"),
                ));
            }
        }
        Ok(())
    }
}

/// The non-zero service ports of a definition, wherever Marathon's versions keep them.
fn service_ports(definition: &Value) -> Vec<u64> {
    let mappings = definition["container"]["portMappings"]
        .as_array()
        .or_else(|| definition["container"]["docker"]["portMappings"].as_array());
    let from = |list: Option<&Vec<Value>>, key: &str| -> Vec<u64> {
        list.into_iter()
            .flatten()
            .filter_map(|m| m.get(key).and_then(Value::as_u64))
            .filter(|&p| p != 0)
            .collect()
    };
    let mut ports = from(mappings, "servicePort");
    ports.extend(from(definition["portDefinitions"].as_array(), "port"));
    ports.extend(
        definition["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .filter(|&p| p != 0),
    );
    ports.sort_unstable();
    ports.dedup();
    ports
}

fn id_of(definition: &Value) -> Result<String, Refused> {
    definition
        .get("id")
        .and_then(Value::as_str)
        .and_then(normalize_id)
        .ok_or_else(|| {
            Refused(
                422,
                "an app definition needs a non-empty string \"id\"".into(),
            )
        })
}

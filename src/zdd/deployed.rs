//! An app of the deployment group as Marathon reports it, read once into what `zdd` decides
//! on: instances, tasks with their health, Marathon deployments in progress, and the
//! `HAPROXY_DEPLOYMENT_*` labels (typed by the balancer's own label parser). The JSON is kept:
//! the pre-kill hook gets it as Marathon gave it.

use serde::Deserialize;
use serde_json::Value;

use crate::marathon::wire::{self, TaskStatus};
use crate::model::labels::{AppLabels, StartedAt};

use super::app::{normalize_group, service_port, PORT_0};

#[derive(Debug, Clone)]
pub struct Deployed {
    pub id: String,
    pub instances: u32,
    pub tasks: Vec<TaskView>,
    /// Whether Marathon health-checks its tasks (then only `healthy` ones count as ready).
    pub health_checked: bool,
    /// Marathon deployments in progress on it.
    pub deployments: usize,
    /// The deployment group, with a leading `/`.
    pub group: Option<String>,
    pub colour: Option<String>,
    pub started_at: StartedAt,
    pub target_instances: Option<u32>,
    pub new_instances: Option<u32>,
    pub service_port: Option<u64>,
    pub alt_port: Option<u64>,
    /// `HAPROXY_0_PORT`: the port the balancer serves the group on.
    pub port_0: Option<u64>,
    pub json: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    pub id: String,
    pub running: bool,
    /// `None` until Marathon reports a health check result.
    pub alive: Option<bool>,
}

impl TaskView {
    /// Running, and healthy when the app is checked: what the balancer routes.
    pub fn ready(&self, checked: bool) -> bool {
        self.running && (!checked || self.alive == Some(true))
    }
}

impl Deployed {
    /// Reads one app (`/v2/apps/{id}`'s `app`, or an entry of `/v2/apps`).
    pub fn from_json(json: Value) -> Result<Deployed, String> {
        #[derive(Deserialize)]
        struct Extra {
            #[serde(default)]
            deployments: Option<Vec<Value>>,
        }
        let app: wire::App = serde_json::from_value(json.clone()).map_err(|e| e.to_string())?;
        let extra: Extra = serde_json::from_value(json.clone()).map_err(|e| e.to_string())?;
        let labels = AppLabels::parse(&app.labels);
        let deployment = labels.deployment.as_deref();
        let tasks = app
            .tasks
            .iter()
            .map(|t| TaskView {
                id: t.id.to_string(),
                running: t.state == Some(TaskStatus::Running),
                alive: t
                    .health_check_results
                    .as_ref()
                    .filter(|r| !r.is_empty())
                    .map(|r| r.iter().all(|r| r.alive)),
            })
            .collect();
        let label_port = |name: &str| {
            app.labels
                .get(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        Ok(Deployed {
            id: app.id.clone(),
            instances: app.instances,
            tasks,
            health_checked: !app.health_checks.is_empty(),
            deployments: extra.deployments.map_or(0, |d| d.len()),
            group: deployment.map(|d| normalize_group(&d.group)),
            colour: deployment.and_then(|d| d.colour.clone()),
            started_at: deployment.map_or(StartedAt::Missing, |d| d.started_at),
            target_instances: deployment.and_then(|d| d.target_instances),
            new_instances: deployment.and_then(|d| d.new_instances),
            service_port: service_port(&json),
            alt_port: deployment.and_then(|d| d.alt_port).map(u64::from),
            port_0: label_port(PORT_0),
            json,
        })
    }

    /// `HAPROXY_DEPLOYMENT_TARGET_INSTANCES`, else its instances (`zdd.py`'s
    /// `get_deployment_target`).
    pub fn target(&self) -> u32 {
        self.target_instances.unwrap_or(self.instances)
    }

    /// Its tasks that the balancer routes.
    pub fn ready(&self) -> impl Iterator<Item = &TaskView> {
        self.tasks.iter().filter(|t| t.ready(self.health_checked))
    }

    /// Ready: every instance runs, healthy where checked, and Marathon deploys nothing more.
    pub fn settled(&self) -> bool {
        self.deployments == 0
            && self.tasks.len() == self.instances as usize
            && self.ready().count() == self.instances as usize
    }

    pub fn colour_name(&self) -> &str {
        self.colour.as_deref().unwrap_or("uncoloured")
    }
}

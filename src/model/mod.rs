//! The typed app model: what Marathon's apps mean for a balancer, with no I/O and no HTTP types.
//!
//! [`from_marathon::catalog`] turns wire apps into [`Service`]s (one per exposed app port, with
//! its typed labels and routable endpoints) and [`Problem`]s. One bad app, port or label becomes a
//! problem that names it; it never spoils the rest.

mod app_services;
pub mod deployment;
pub mod from_marathon;
pub mod health;
pub mod labels;
pub mod network;
pub mod path;
pub mod problem;
pub mod vhost;

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use from_marathon::{catalog, catalog_after, catalog_patch, patchable};
pub use health::HealthMemory;
pub use labels::{BackendProtocol, Balance, Groups, Mode, PortLabels};
pub use network::AgentAddrs;
pub use path::{PathMatch, UriPath};
pub use problem::{Problem, ProblemKind, Severity};
pub use vhost::VHost;

/// A Marathon app id: an absolute path such as `/shop/web`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AppId(Arc<str>);

impl AppId {
    pub fn new(id: &str) -> AppId {
        AppId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a shared string (cloning it is a reference count, not a copy).
    pub fn shared(&self) -> &Arc<str> {
        &self.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the model needs from the command line.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// `--group`: the groups this balancer serves (`*` = every app, even without a group).
    pub groups: Groups,
    /// `--strict-mode`: only ports with `HAPROXY_{n}_ENABLED=true` are served.
    pub strict_mode: bool,
    /// Route only tasks whose health checks pass (on by default; `--no-health-check` turns it off).
    pub health_check: bool,
    /// `$FRAMEWORK_NAME`: the balancer's own app id without the leading `/`, never exposed.
    pub framework_name: Option<String>,
    /// `--min/max-serv-port-ip-per-task`: where IP-per-task apps without service ports get one.
    pub ip_per_task_ports: RangeInclusive<u16>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions {
            groups: Groups::parse("external"),
            strict_mode: false,
            health_check: true,
            framework_name: None,
            ip_per_task_ports: 10050..=10100,
        }
    }
}

/// The model of one refresh.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Sorted by (app id, port index). Shared: a patched catalog keeps the unchanged services
    /// of the last one, and the table holds the same services, without copies.
    pub services: Vec<Arc<Service>>,
    pub problems: Vec<Problem>,
}

impl Catalog {
    /// The service of one app port, if this catalog serves it.
    pub fn service(&self, app_id: &str, port_index: usize) -> Option<&Arc<Service>> {
        let key = (app_id, port_index);
        self.services
            .binary_search_by(|s| (s.app_id.as_str(), s.port_index).cmp(&key))
            .ok()
            .map(|i| &self.services[i])
    }
}

/// One exposed port of one app (Marathon-LB's "service"): its labels, typed, and its endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub app_id: AppId,
    pub port_index: usize,
    /// The port the balancer binds for this app port (`HAPROXY_{n}_PORT` or the service port).
    pub service_port: u16,
    pub mode: Mode,
    /// Route order among routes of one host; `HAPROXY_{n}_PATH` raises 0 to 1.
    pub weight: i64,
    /// Boxed: a service moves several times on its way into the table.
    pub labels: Box<PortLabels>,
    /// Sorted by task id.
    pub endpoints: Vec<TaskEndpoint>,
    /// The app's Marathon health check for this port, run by the balancer too (as Marathon-LB
    /// has HAProxy do).
    pub health_check: Option<ActiveCheck>,
}

/// An active health check, from the app's Marathon health check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActiveCheck {
    pub kind: CheckKind,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures that take an endpoint out (`maxConsecutiveFailures + 1`, as
    /// Marathon-LB configures HAProxy's `fall`).
    pub fall: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CheckKind {
    /// `GET path`; a 2xx or 3xx answer passes.
    Http { path: String },
    /// A TCP connect passes (also used for HTTPS checks).
    Tcp,
}

/// One task's address for one service port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TaskEndpoint {
    pub addr: SocketAddr,
    pub task_id: Arc<str>,
    /// The Mesos agent (`task.host`) the task runs on.
    pub agent: Arc<str>,
    pub state: TaskState,
    /// A zero-downtime deployment drains this old task: no new requests.
    pub draining: bool,
    /// `HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX`: the task port to health-check instead.
    pub health_check_port: Option<u16>,
}

/// The task states Marathon-LB routes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Running,
    /// Routed optimistically, as Marathon-LB does: the task may still be up.
    Lost,
    Unreachable,
}

//! Marathon-LB's labels: the ONLY place a label string is read.
//!
//! [`AppLabels::parse`] turns an app's `labels` map into typed values once, at the edge. Every
//! problem it finds is a [`LabelIssue`] carrying the label's name and the reason; an invalid
//! per-port value excludes that port only, never the app's other ports or other apps.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDateTime};
use ipnet::IpNet;
use serde::Serialize;
use smallvec::SmallVec;

use self::values::{invalid, parse_number, parse_port};
use super::path::{PathMatch, UriPath};
use super::vhost::VHost;
use crate::marathon::labels::Labels;

/// How a service port is proxied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Http,
    Tcp,
}

/// `HAPROXY_{n}_BALANCE`: how an endpoint is picked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    #[default]
    RoundRobin,
    LeastConn,
    /// A hash of the client address.
    Source,
}

/// `HAPROXY_{n}_AUTH` = `realm:user:crypt-hash`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
pub struct BasicAuth {
    pub realm: Box<str>,
    pub user: Box<str>,
    /// A crypt(3) hash. Not a password, but still not something to print: never serialized.
    #[serde(skip)]
    pub hash: Box<str>,
}

/// The `HAPROXY_DEPLOYMENT_*` labels of a zero-downtime (blue/green) deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The merged app's id: the group name with a leading `/`.
    pub group: String,
    pub started_at: StartedAt,
    pub target_instances: Option<u32>,
    /// Whether `HAPROXY_DEPLOYMENT_NEW_INSTANCES` is set (it decides how the target is read).
    pub has_new_instances: bool,
    /// Its value, when a number: the new app's share of a split (hybrid) deployment.
    pub new_instances: Option<u32>,
    pub alt_port: Option<u16>,
    pub colour: Option<String>,
}

/// `HAPROXY_DEPLOYMENT_STARTED_AT`, which tells the old app of a group from the new one.
/// Ordered as Marathon-LB orders it: an app without the label is the oldest (it was not
/// deployed by `zdd.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StartedAt {
    Missing,
    /// In UTC. `zdd.py` writes a naive local time (Python's `isoformat()`), read as UTC: naive
    /// times compare correctly with each other, as they do in Marathon-LB's dateutil.
    At(NaiveDateTime),
    /// Set, and not a time: never compared; the merge looks elsewhere (see `deployment.rs`).
    Unreadable,
}

impl StartedAt {
    /// RFC 3339 (any offset, converted to UTC), or an ISO 8601 time without offset, with `T` or
    /// a space between date and time and optional fractional seconds, or a bare date.
    pub fn parse(value: &str) -> Option<NaiveDateTime> {
        if let Ok(at) = DateTime::parse_from_rfc3339(value) {
            return Some(at.naive_utc());
        }
        for format in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
        ] {
            if let Ok(at) = NaiveDateTime::parse_from_str(value, format) {
                return Some(at);
            }
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
            if let Ok(at) = DateTime::parse_from_str(value, format) {
                return Some(at.naive_utc());
            }
        }
        chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    }
}

/// The typed `HAPROXY_{n}_*` values of one service-port index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortLabels {
    /// Inline: nearly every port names one vhost.
    pub vhosts: SmallVec<[VHost; 1]>,
    pub path: Option<PathMatch>,
    pub backend_weight: Option<i64>,
    pub port: Option<u16>,
    pub mode: Option<Mode>,
    pub balance: Balance,
    pub sticky: bool,
    pub enabled: Option<bool>,
    pub groups: Option<Groups>,
    pub redirect_to_https: bool,
    pub use_hsts: bool,
    /// Boxed: rare, and three strings wide.
    pub auth: Option<Box<BasicAuth>>,
    pub ssl_cert: Option<PathBuf>,
    pub bind_addr: Option<IpAddr>,
    pub proxypass_path: Option<UriPath>,
    pub revproxy_path: Option<UriPath>,
    pub redirect_root_to: Option<UriPath>,
    pub allowed_networks: Option<Vec<IpNet>>,
    pub healthcheck_port_index: Option<usize>,
    /// `HAPROXY_{n}_BACKEND_PROTOCOL`.
    pub backend_protocol: Option<BackendProtocol>,
    /// HAProxy 2.x keywords on the default `HAPROXY_{n}_BACKEND_SERVER_OPTIONS` line.
    pub server_line: Option<ServerLine>,
}

impl PortLabels {
    /// The protocol spoken to the endpoints: `HAPROXY_{n}_BACKEND_PROTOCOL` when set (it says so
    /// in so many words), else what the server line's keywords say, else HTTP/1.1.
    pub fn protocol(&self) -> BackendProtocol {
        self.backend_protocol
            .or(self.server_line.map(|l| l.protocol))
            .unwrap_or_default()
    }

    /// Whether the endpoints' certificates may be checked (`--backend-ca`): not when the
    /// server line says `verify none`.
    pub fn verify_backend(&self) -> bool {
        !self.server_line.is_some_and(|l| l.verify_none)
    }
}

/// One problem with one label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabelIssue {
    pub label: String,
    pub kind: LabelIssueKind,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelIssueKind {
    /// A value Switchyard cannot use: the port it belongs to is not served (or keeps its last
    /// good labels).
    Invalid,
    /// A Marathon-LB HAProxy template override: not supported, ignored, reported.
    UnsupportedTemplate,
    /// A Marathon-LB label that has no meaning here: ignored, reported.
    Unsupported,
    /// An `HAPROXY_` label Marathon-LB does not define either (a typo?): ignored, reported.
    Unknown,
}

/// An app's labels, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppLabels {
    pub groups: Option<Groups>,
    pub deployment: Option<Box<Deployment>>,
    /// Per service-port index, sorted by index. A vector, the first inline: apps label one
    /// port or two, and a map's node would cost more to build and drop than the search it
    /// saves. `None` once taken (taking leaves the others where they are).
    ports: SmallVec<[(usize, Option<PortLabelSet>); 1]>,
    /// Issues with app-level labels; they never exclude the app.
    pub issues: Vec<LabelIssue>,
}

/// The labels of one port index and their issues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortLabelSet {
    /// Boxed: it moves from here into the service, and on into the table, without copying.
    pub labels: Box<PortLabels>,
    pub issues: Vec<LabelIssue>,
}

// === impl AppLabels ===

impl AppLabels {
    /// Reads every `HAPROXY_*` label; other labels are the app's own business.
    pub fn parse(labels: &Labels) -> AppLabels {
        let mut out = AppLabels::default();
        let mut deployment = false;
        // In name order, so that issues come out in the same order whatever the JSON's order.
        for (key, value) in labels.iter() {
            let Some(rest) = key.strip_prefix(PREFIX) else {
                continue;
            };
            match split_port_index(rest) {
                Some((index, name)) => {
                    let set = out.port_mut(index);
                    if let Err(issue) = set.labels.apply(key, name, value) {
                        set.issues.push(issue);
                    }
                }
                None => deployment |= out.apply_app_level(key, rest, value),
            }
        }
        // Name order is not index order (`HAPROXY_10_` before `HAPROXY_1_`): sorted once here,
        // rather than kept sorted by inserts, which a hostile app with thousands of indexes
        // would make quadratic.
        out.ports.sort_unstable_by_key(|(index, _)| *index);
        if deployment {
            out.finish_deployment(labels);
        }
        out
    }

    /// The labels of a port index, if the app sets any.
    pub fn port(&self, index: usize) -> Option<&PortLabelSet> {
        self.find(index).ok().and_then(|i| self.ports[i].1.as_ref())
    }

    /// Takes the labels of a port index out (defaults when the app sets none).
    pub fn take_port(&mut self, index: usize) -> PortLabelSet {
        self.find(index)
            .ok()
            .and_then(|i| self.ports[i].1.take())
            .unwrap_or_default()
    }

    /// The port indexes the app labels, ascending.
    pub fn port_indexes(&self) -> impl Iterator<Item = usize> + '_ {
        self.ports.iter().map(|(index, _)| *index)
    }

    fn find(&self, index: usize) -> Result<usize, usize> {
        self.ports.binary_search_by_key(&index, |(i, _)| *i)
    }

    /// The set being filled for `index`. Labels come in name order, so all of one index's
    /// labels (one prefix, `HAPROXY_{index}_`) come one after another: a new index starts a
    /// new set.
    fn port_mut(&mut self, index: usize) -> &mut PortLabelSet {
        if self.ports.last().is_none_or(|(last, _)| *last != index) {
            self.ports.push((index, Some(PortLabelSet::default())));
        }
        let (_, set) = self.ports.last_mut().expect("just pushed");
        set.get_or_insert_with(PortLabelSet::default)
    }

    /// Applies an app-level label; true for a `HAPROXY_DEPLOYMENT_*` one (read later, together).
    fn apply_app_level(&mut self, key: &str, name: &str, value: &str) -> bool {
        match name {
            "GROUP" => self.groups = Some(Groups::parse(value)),
            // `zdd.py` records the app's id before the colour suffix; nothing to route by.
            "APP_ID" => {}
            // Read together in `finish_deployment`.
            "DEPLOYMENT_GROUP"
            | "DEPLOYMENT_ALT_PORT"
            | "DEPLOYMENT_COLOUR"
            | "DEPLOYMENT_STARTED_AT"
            | "DEPLOYMENT_TARGET_INSTANCES"
            | "DEPLOYMENT_NEW_INSTANCES" => return true,
            _ => self.issues.push(LabelIssue {
                label: key.to_owned(),
                kind: LabelIssueKind::Unknown,
                reason: "not a Marathon-LB app label (per-port labels are HAPROXY_{n}_NAME)"
                    .to_owned(),
            }),
        }
        false
    }

    fn finish_deployment(&mut self, labels: &Labels) {
        let Some(group) = labels.get(DEPLOYMENT_GROUP).map(|g| g.trim()) else {
            return;
        };
        if group.is_empty() || group == "/" {
            self.issues
                .push(invalid(DEPLOYMENT_GROUP, "empty group name"));
            return;
        }
        let mut issues = Vec::new();
        let read = |name: &'static str| labels.get(name).map(|v| (name, v.trim()));
        let started_at = match read("HAPROXY_DEPLOYMENT_STARTED_AT") {
            None => StartedAt::Missing,
            Some((name, v)) => match StartedAt::parse(v) {
                Some(at) => StartedAt::At(at),
                None => {
                    issues.push(invalid(
                        name,
                        &format!(
                            "`{v}` is not an ISO 8601 time; the group's old and new apps are told \
                             apart by their versionInfo.lastConfigChangeAt instead, and nothing \
                             is drained when that does not tell them apart"
                        ),
                    ));
                    StartedAt::Unreadable
                }
            },
        };
        let target_instances = read("HAPROXY_DEPLOYMENT_TARGET_INSTANCES").and_then(|(name, v)| {
            parse_number::<u32>(name, v)
                .map_err(|e| issues.push(e))
                .ok()
        });
        let has_new_instances = labels.contains_key("HAPROXY_DEPLOYMENT_NEW_INSTANCES");
        let new_instances = read("HAPROXY_DEPLOYMENT_NEW_INSTANCES").and_then(|(name, v)| {
            parse_number::<u32>(name, v)
                .map_err(|e| issues.push(e))
                .ok()
        });
        let alt_port = read("HAPROXY_DEPLOYMENT_ALT_PORT")
            .and_then(|(name, v)| parse_port(name, v).map_err(|e| issues.push(e)).ok());
        let colour = read("HAPROXY_DEPLOYMENT_COLOUR").map(|(_, v)| v.to_owned());
        self.issues.extend(issues);
        self.deployment = Some(Box::new(Deployment {
            group: if group.starts_with('/') {
                group.to_owned()
            } else {
                format!("/{group}")
            },
            started_at,
            target_instances,
            has_new_instances,
            new_instances,
            alt_port,
            colour,
        }));
    }
}

impl PortLabelSet {
    /// Whether any label of this port is unusable (the port is then not served).
    pub fn is_invalid(&self) -> bool {
        self.issues
            .iter()
            .any(|i| i.kind == LabelIssueKind::Invalid)
    }
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("realm", &self.realm)
            .field("user", &self.user)
            .field("hash", &"<redacted>")
            .finish()
    }
}

/// Whether an app's labels put it in a zero-downtime deployment group (read without parsing
/// the rest: a refresh asks this of every changed app).
pub fn in_deployment_group(labels: &Labels) -> bool {
    labels.contains_key(DEPLOYMENT_GROUP)
}

const DEPLOYMENT_GROUP: &str = "HAPROXY_DEPLOYMENT_GROUP";

// === label names ===

const PREFIX: &str = "HAPROXY_";

/// `0_VHOST` → `(0, "VHOST")`; `GROUP` → `None`.
fn split_port_index(rest: &str) -> Option<(usize, &str)> {
    let (digits, name) = rest.split_once('_')?;
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, name))
}

mod backend_protocol;
mod groups;
mod port;
mod templates;
mod values;

pub use backend_protocol::{BackendProtocol, ServerLine};
pub use groups::Groups;

#[cfg(test)]
mod tests;

//! Networking modes, service ports and task addresses, as Marathon-LB derives them
//! (its `utils.py`; spec `marathon-dcos-universe.md` §1.5).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::ops::RangeInclusive;

use sha1::{Digest, Sha1};

use crate::marathon::wire;

/// An app's networking mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// Host networking: agent address, host ports.
    Host,
    /// Docker bridge: agent address, mapped host ports.
    Bridge,
    /// IP-per-task (USER / container network): task IP, container ports.
    Container,
}

impl NetworkMode {
    /// Later rules override earlier ones, as in Marathon-LB's `get_app_networking_mode`.
    pub fn of(app: &wire::App) -> NetworkMode {
        let mut mode = NetworkMode::Host;
        if app.ip_address.is_some() {
            mode = NetworkMode::Container;
        }
        match docker(app).and_then(|d| d.network.as_deref()) {
            Some("USER") => mode = NetworkMode::Container,
            Some("BRIDGE") => mode = NetworkMode::Bridge,
            _ => {}
        }
        for network in &app.networks {
            mode = match network.mode.as_deref() {
                Some("host") => NetworkMode::Host,
                Some("container/bridge") => NetworkMode::Bridge,
                _ => NetworkMode::Container,
            };
        }
        mode
    }
}

/// The app's service ports, in port-index order, as Marathon reports them (missing and zero
/// entries skipped, as Marathon-LB does). Values are raw: the caller checks their range.
pub fn declared_service_ports(app: &wire::App, mode: NetworkMode) -> Vec<u32> {
    if mode != NetworkMode::Host {
        let ports: Vec<u32> = port_mappings(app)
            .iter()
            .filter_map(|m| m.service_port)
            .filter(|&p| p != 0)
            .collect();
        if !ports.is_empty() {
            return ports;
        }
    }
    if !app.port_definitions.is_empty() {
        return app
            .port_definitions
            .iter()
            .filter_map(|d| d.port)
            .filter(|&p| p != 0)
            .collect();
    }
    app.ports.iter().copied().filter(|&p| p != 0).collect()
}

/// The ports a task listens on, paired by index with the service ports.
///
/// Borrowed in the common case (the task's own host ports), so a refresh of thousands of tasks
/// does not copy them.
pub fn task_ports<'a>(app: &wire::App, mode: NetworkMode, task: &'a wire::Task) -> Cow<'a, [u32]> {
    let definition_ports =
        || Cow::Owned(app.port_definitions.iter().filter_map(|d| d.port).collect());
    let container_ports = || {
        Cow::Owned(
            port_mappings(app)
                .iter()
                .filter_map(|m| m.container_port)
                .collect(),
        )
    };
    match mode {
        NetworkMode::Host if !task.ports.is_empty() => Cow::Borrowed(&task.ports),
        NetworkMode::Host => definition_ports(),
        NetworkMode::Bridge if !task.ports.is_empty() => Cow::Borrowed(&task.ports),
        NetworkMode::Bridge if !app.port_definitions.is_empty() => definition_ports(),
        NetworkMode::Bridge => container_ports(),
        NetworkMode::Container => {
            let discovery = app
                .ip_address
                .as_ref()
                .and_then(|ip| ip.discovery.as_ref())
                .map(|d| d.ports.iter().filter_map(|p| p.number).collect::<Vec<_>>())
                .unwrap_or_default();
            if discovery.is_empty() {
                container_ports()
            } else {
                Cow::Owned(discovery)
            }
        }
    }
}

/// The first non-empty list of port mappings: ≤1.4 `container.docker.portMappings`, then 1.5+
/// `container.portMappings`.
fn port_mappings(app: &wire::App) -> &[wire::PortMapping] {
    let Some(container) = &app.container else {
        return &[];
    };
    match &container.docker {
        Some(docker) if !docker.port_mappings.is_empty() => &docker.port_mappings,
        _ => &container.port_mappings,
    }
}

fn docker(app: &wire::App) -> Option<&wire::Docker> {
    app.container.as_ref()?.docker.as_ref()
}

/// Where a task can be reached, before pairing with ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskIp {
    Ip(IpAddr),
    /// Not routable yet (no IP assigned), not a problem.
    NotYet,
    /// The agent host name did not resolve.
    Unresolved,
}

/// The task's IP: its own (`ipAddresses[0]`) with IP-per-task; otherwise its agent's address
/// (`agent`, from [`AgentAddrs::get`]). Never the Docker bridge address Marathon reports in
/// bridge mode: other hosts cannot reach it.
pub fn task_ip(mode: NetworkMode, task: &wire::Task, agent: Option<IpAddr>) -> TaskIp {
    match mode {
        NetworkMode::Container => task
            .ip_addresses
            .first()
            .and_then(|a| a.ip_address.as_deref())
            .and_then(|ip| ip.parse().ok())
            .map_or(TaskIp::NotYet, TaskIp::Ip),
        NetworkMode::Host | NetworkMode::Bridge => agent.map_or(TaskIp::Unresolved, TaskIp::Ip),
    }
}

/// Agent host names resolved to addresses before the model is built, so that building stays
/// pure and never blocks on DNS. IP literals need no entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentAddrs(HashMap<String, IpAddr>);

impl AgentAddrs {
    pub fn new(resolved: HashMap<String, IpAddr>) -> AgentAddrs {
        AgentAddrs(resolved)
    }

    pub fn get(&self, host: &str) -> Option<IpAddr> {
        host.parse().ok().or_else(|| self.0.get(host).copied())
    }

    /// Every name with its address.
    pub fn iter(&self) -> impl Iterator<Item = (&str, IpAddr)> {
        self.0.iter().map(|(name, ip)| (name.as_str(), *ip))
    }

    /// Whether every name of `earlier` has the same address here (names may have been added):
    /// what was built with `earlier` holds with these.
    pub fn extends(&self, earlier: &AgentAddrs) -> bool {
        earlier
            .0
            .iter()
            .all(|(name, ip)| self.0.get(name) == Some(ip))
    }

    /// Host names (not IP literals) of tasks that will need an agent address.
    pub fn names_to_resolve<'a>(apps: impl Iterator<Item = &'a wire::App>) -> HashSet<String> {
        apps.filter(|app| NetworkMode::of(app) != NetworkMode::Container)
            .flat_map(|app| app.tasks.iter())
            .filter_map(|task| task.host.as_deref())
            .filter(|host| !host.is_empty() && host.parse::<IpAddr>().is_err())
            .map(str::to_owned)
            .collect()
    }
}

/// Marathon-LB's deterministic service ports for IP-per-task apps that report none (Marathon
/// issue #3636): SHA-1 of `"<appId>-<taskPort>-<attempt>"`, first 8 hex digits, into the range,
/// avoiding ports already taken in this refresh. Apps must be visited in a fixed order.
#[derive(Debug)]
pub struct ServicePortAssigner {
    range: RangeInclusive<u16>,
    taken: HashSet<u16>,
}

/// How many hash attempts before a linear scan of the range.
const MAX_CLASHES: u32 = 50;

impl ServicePortAssigner {
    pub fn new(range: RangeInclusive<u16>) -> ServicePortAssigner {
        ServicePortAssigner {
            range,
            taken: HashSet::new(),
        }
    }

    /// A port for `(app_id, task_port)`, or `None` when the range is used up.
    pub fn assign(&mut self, app_id: &str, task_port: u32) -> Option<u16> {
        let (min, max) = (*self.range.start(), *self.range.end());
        if max < min {
            return None;
        }
        let count = u32::from(max - min) + 1;
        let hashed = (0..MAX_CLASHES).find_map(|attempt| {
            let digest = Sha1::digest(format!("{app_id}-{task_port}-{attempt}").as_bytes());
            let first8 = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
            // `count` ≤ 65536, so the result fits a u16 offset.
            let port = min + (first8 % count) as u16;
            (!self.taken.contains(&port)).then_some(port)
        });
        let port = hashed.or_else(|| self.range.clone().find(|p| !self.taken.contains(p)))?;
        self.taken.insert(port);
        Some(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(json: &str) -> wire::App {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn modes_of_every_marathon_shape() {
        assert_eq!(NetworkMode::of(&app(r#"{"id":"/a"}"#)), NetworkMode::Host);
        assert_eq!(
            NetworkMode::of(&app(r#"{"id":"/a","networks":[{"mode":"host"}]}"#)),
            NetworkMode::Host
        );
        assert_eq!(
            NetworkMode::of(&app(
                r#"{"id":"/a","networks":[{"mode":"container/bridge"}]}"#
            )),
            NetworkMode::Bridge
        );
        assert_eq!(
            NetworkMode::of(&app(r#"{"id":"/a","networks":[{"name":"dcos"}]}"#)),
            NetworkMode::Container
        );
        assert_eq!(
            NetworkMode::of(&app(
                r#"{"id":"/a","container":{"docker":{"network":"BRIDGE"}}}"#
            )),
            NetworkMode::Bridge
        );
        assert_eq!(
            NetworkMode::of(&app(
                r#"{"id":"/a","container":{"docker":{"network":"USER"}}}"#
            )),
            NetworkMode::Container
        );
        assert_eq!(
            NetworkMode::of(&app(r#"{"id":"/a","ipAddress":{"networkName":"dcos"}}"#)),
            NetworkMode::Container
        );
        assert_eq!(
            NetworkMode::of(&app(r#"{"id":"/a","ipAddress":null}"#)),
            NetworkMode::Host
        );
    }

    #[test]
    fn service_ports_from_each_location() {
        let host = app(r#"{"id":"/a","portDefinitions":[{"port":10001},{"port":10002}]}"#);
        assert_eq!(
            declared_service_ports(&host, NetworkMode::Host),
            [10001, 10002]
        );
        let legacy = app(r#"{"id":"/a","ports":[10003]}"#);
        assert_eq!(declared_service_ports(&legacy, NetworkMode::Host), [10003]);
        let bridge14 = app(
            r#"{"id":"/a","container":{"docker":{"network":"BRIDGE","portMappings":[{"containerPort":80,"servicePort":10004}]}},"ports":[10004]}"#,
        );
        assert_eq!(
            declared_service_ports(&bridge14, NetworkMode::Bridge),
            [10004]
        );
        let bridge15 = app(
            r#"{"id":"/a","networks":[{"mode":"container/bridge"}],"container":{"portMappings":[{"containerPort":80,"servicePort":10005},{"containerPort":81}]}}"#,
        );
        assert_eq!(
            declared_service_ports(&bridge15, NetworkMode::Bridge),
            [10005]
        );
        let user14 = app(r#"{"id":"/a","ipAddress":{"discovery":{"ports":[{"number":80}]}}}"#);
        assert!(declared_service_ports(&user14, NetworkMode::Container).is_empty());
    }

    #[test]
    fn assigner_is_deterministic_and_avoids_clashes() {
        let mut a = ServicePortAssigner::new(10050..=10051);
        let first = a.assign("/app", 80).unwrap();
        let second = a.assign("/app", 81).unwrap();
        assert_ne!(first, second);
        assert!(a.assign("/other", 80).is_none(), "range of two is used up");
        let mut b = ServicePortAssigner::new(10050..=10051);
        assert_eq!(b.assign("/app", 80), Some(first));
    }

    #[test]
    fn assigner_matches_marathon_lb_hash() {
        // Expected values computed with Python's hashlib, as Marathon-LB does:
        // 10050 + int(sha1("/app-80-0").hexdigest()[:8], 16) % 51.
        let mut a = ServicePortAssigner::new(10050..=10100);
        assert_eq!(a.assign("/app", 80), Some(10098));
        assert_eq!(a.assign("/app", 81), Some(10071));
        assert_eq!(a.assign("/web", 8080), Some(10068));
    }
}

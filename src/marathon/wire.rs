//! Serde types for `GET /v2/apps?embed=apps.tasks`, as Marathon 1.4 to 1.11 emit it.
//!
//! These types know Marathon's JSON and nothing about routing. They are lenient the way
//! Marathon-LB is: unknown fields are ignored, `null` reads as absent, and both the 1.4 shape
//! (`container.docker.network`, `container.docker.portMappings`, `ipAddress`, `ports`) and the
//! 1.5+ shape (`networks`, `container.portMappings`) are accepted. The list is parsed app by app,
//! so one malformed app becomes an error for that app and never for the list.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

pub use super::labels::Labels;
use super::snapshot::Fingerprint;

/// The parsed `/v2/apps` document: every app that parsed, and an error for each that did not.
#[derive(Debug, Clone, Default)]
pub struct AppsSnapshot {
    pub apps: Vec<App>,
    pub errors: Vec<AppParseError>,
}

/// One app of the list that could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("app {app_id} (entry {index}) is malformed: {reason}")]
pub struct AppParseError {
    /// The app id when it could be read, else `?`.
    pub app_id: String,
    /// Position in the `apps` array.
    pub index: usize,
    pub reason: String,
}

/// The document as a whole could not be read (not JSON, or no `apps` array).
#[derive(Debug, thiserror::Error)]
#[error("the /v2/apps document is malformed: {0}")]
pub struct DocumentError(#[from] serde_json::Error);

/// Parses a `/v2/apps` response body, app by app.
pub fn parse_apps(body: &[u8]) -> Result<AppsSnapshot, DocumentError> {
    #[derive(Deserialize)]
    struct Document<'a> {
        #[serde(borrow)]
        apps: Vec<&'a RawValue>,
    }
    let document: Document<'_> = serde_json::from_slice(body)?;
    let mut snapshot = AppsSnapshot {
        apps: Vec::with_capacity(document.apps.len()),
        errors: Vec::new(),
    };
    for (index, raw) in document.apps.into_iter().enumerate() {
        match serde_json::from_str::<App>(raw.get()) {
            Ok(app) => snapshot.apps.push(App {
                fingerprint: Fingerprint::of(raw.get()),
                ..app
            }),
            Err(err) => snapshot.errors.push(AppParseError {
                app_id: app_id_of(raw).unwrap_or_else(|| "?".to_owned()),
                index,
                reason: err.to_string(),
            }),
        }
    }
    Ok(snapshot)
}

/// Parses a `/v2/apps/{id}` response body (`{"app": {...}}`): the app, or why it cannot be
/// read (as one app of a list would be reported).
pub fn parse_app(body: &[u8]) -> Result<Result<App, AppParseError>, DocumentError> {
    #[derive(Deserialize)]
    struct Document<'a> {
        #[serde(borrow)]
        app: &'a RawValue,
    }
    let document: Document<'_> = serde_json::from_slice(body)?;
    let raw = document.app.get();
    Ok(serde_json::from_str::<App>(raw)
        .map(|app| App {
            fingerprint: Fingerprint::of(raw),
            ..app
        })
        .map_err(|err| AppParseError {
            app_id: app_id_of(document.app).unwrap_or_else(|| "?".to_owned()),
            index: 0,
            reason: err.to_string(),
        }))
}

/// Best effort: the `id` of an app whose full parse failed, for the error message.
fn app_id_of(raw: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: String,
    }
    serde_json::from_str::<IdOnly>(raw.get()).ok().map(|a| a.id)
}

/// One entry of `apps[]` (app definition plus the `tasks` embed).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub labels: Labels,
    #[serde(default, deserialize_with = "null_default")]
    pub instances: u32,
    #[serde(default)]
    pub version_info: Option<VersionInfo>,
    /// 1.5+ network list; absent means host networking.
    #[serde(default, deserialize_with = "null_default")]
    pub networks: Vec<Network>,
    #[serde(default)]
    pub container: Option<Container>,
    /// Host-networking port definitions; `port` is the service port.
    #[serde(default, deserialize_with = "null_default")]
    pub port_definitions: Vec<PortDefinition>,
    /// Legacy (≤1.4) alias of the service ports.
    #[serde(default, deserialize_with = "null_default")]
    pub ports: Vec<u32>,
    /// ≤1.4 IP-per-task; presence (not `null`) means container networking.
    #[serde(default)]
    pub ip_address: Option<IpAddressSpec>,
    #[serde(default, deserialize_with = "null_default")]
    pub health_checks: Vec<HealthCheck>,
    #[serde(default, deserialize_with = "null_default")]
    pub tasks: Vec<Task>,
    /// A hash of the JSON the app was read from; none once an event changed it.
    #[serde(skip)]
    pub fingerprint: Fingerprint,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    #[serde(default)]
    pub last_scaling_at: Option<String>,
    /// Changes when the definition changes, not when the app scales.
    #[serde(default)]
    pub last_config_change_at: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Network {
    /// `host`, `container/bridge` or `container`; Marathon's default when missing is `container`.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub docker: Option<Docker>,
    /// 1.5+ location of the port mappings.
    #[serde(default, deserialize_with = "null_default")]
    pub port_mappings: Vec<PortMapping>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Docker {
    /// ≤1.4: `BRIDGE`, `HOST`, `USER` or `NONE`.
    #[serde(default)]
    pub network: Option<String>,
    /// ≤1.4 location of the port mappings.
    #[serde(default, deserialize_with = "null_default")]
    pub port_mappings: Vec<PortMapping>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    #[serde(default)]
    pub container_port: Option<u32>,
    #[serde(default)]
    pub host_port: Option<u32>,
    #[serde(default)]
    pub service_port: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PortDefinition {
    #[serde(default)]
    pub port: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct IpAddressSpec {
    #[serde(default)]
    pub discovery: Option<Discovery>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Discovery {
    #[serde(default, deserialize_with = "null_default")]
    pub ports: Vec<DiscoveryPort>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct DiscoveryPort {
    #[serde(default)]
    pub number: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// Marathon's default protocol is HTTP.
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port_index: Option<u32>,
    #[serde(default)]
    pub port: Option<u32>,
    /// HTTP checks: the path to GET.
    #[serde(default)]
    pub path: Option<String>,
    /// Marathon's defaults: 60 s, 20 s, 3.
    #[serde(default)]
    pub interval_seconds: Option<u32>,
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
    #[serde(default)]
    pub max_consecutive_failures: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Shared: every endpoint of the task holds it without a copy.
    pub id: std::sync::Arc<str>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub state: Option<TaskStatus>,
    #[serde(default, deserialize_with = "null_default")]
    pub ports: Vec<u32>,
    #[serde(default, deserialize_with = "null_default")]
    pub ip_addresses: Vec<TaskIpAddress>,
    /// Absent until the first result arrives.
    #[serde(default)]
    pub health_check_results: Option<Vec<HealthCheckResult>>,
    #[serde(default)]
    pub version: Option<String>,
}

/// A task's state as Marathon reports it (the Mesos state names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TaskStatus {
    #[serde(rename = "TASK_STAGING")]
    Staging,
    #[serde(rename = "TASK_STARTING")]
    Starting,
    #[serde(rename = "TASK_RUNNING")]
    Running,
    #[serde(rename = "TASK_KILLING")]
    Killing,
    #[serde(rename = "TASK_FINISHED")]
    Finished,
    #[serde(rename = "TASK_FAILED")]
    Failed,
    #[serde(rename = "TASK_KILLED")]
    Killed,
    #[serde(rename = "TASK_ERROR")]
    Error,
    #[serde(rename = "TASK_LOST")]
    Lost,
    #[serde(rename = "TASK_DROPPED")]
    Dropped,
    #[serde(rename = "TASK_UNREACHABLE")]
    Unreachable,
    #[serde(rename = "TASK_GONE")]
    Gone,
    #[serde(rename = "TASK_GONE_BY_OPERATOR")]
    GoneByOperator,
    #[serde(rename = "TASK_UNKNOWN")]
    Unknown,
    /// A state a later Marathon or Mesos invents.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskIpAddress {
    #[serde(default)]
    pub ip_address: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct HealthCheckResult {
    #[serde(default, deserialize_with = "null_default")]
    pub alive: bool,
}

/// Reads `null` as the type's default, as Marathon-LB's `cleanup_json` does by stripping nulls.
fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_malformed_app_does_not_spoil_the_list() {
        let body = br#"{"apps": [
            {"id": "/good", "labels": {"HAPROXY_GROUP": "external"}},
            {"id": "/bad", "instances": "three"},
            {"instances": 1},
            {"id": "/also-good", "labels": null, "tasks": null, "ipAddress": null}
        ]}"#;
        let snapshot = parse_apps(body).expect("document parses");
        let ids: Vec<_> = snapshot.apps.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["/good", "/also-good"]);
        assert_eq!(snapshot.errors.len(), 2);
        assert_eq!(snapshot.errors[0].app_id, "/bad");
        assert_eq!(snapshot.errors[0].index, 1);
        assert!(snapshot.errors[0].reason.contains("invalid type"));
        assert_eq!(snapshot.errors[1].app_id, "?");
        assert!(snapshot.errors[1].reason.contains("missing field `id`"));
    }

    #[test]
    fn a_broken_document_is_one_error() {
        assert!(parse_apps(b"{\"apps\": [").is_err());
        assert!(parse_apps(b"{\"message\": \"Invalid username or password.\"}").is_err());
        assert!(parse_apps(b"<html>").is_err());
    }

    #[test]
    fn ip_address_null_reads_as_absent() {
        let snapshot = parse_apps(br#"{"apps":[{"id":"/a","ipAddress":null}]}"#).unwrap();
        assert!(snapshot.apps[0].ip_address.is_none());
        let snapshot = parse_apps(br#"{"apps":[{"id":"/a","ipAddress":{}}]}"#).unwrap();
        assert!(snapshot.apps[0].ip_address.is_some());
    }
}

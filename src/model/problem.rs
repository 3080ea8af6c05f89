//! Problems found while reading apps and building the table: what an operator reads to learn
//! why an app is not routed.

use std::fmt;

use serde::Serialize;

use super::labels::{LabelIssue, LabelIssueKind};

/// One problem, naming the app, the port index and the label it comes from where it has them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    pub app_id: Option<String>,
    pub port_index: Option<usize>,
    pub label: Option<String>,
    pub kind: ProblemKind,
    pub message: String,
}

/// What kind of problem; each kind has a fixed severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The app's JSON could not be read.
    MalformedApp,
    /// A label value is unusable; its port is not served, or keeps the labels it was last
    /// served with.
    InvalidLabel,
    /// A port number in the app definition is out of range; that port is not served.
    InvalidPort,
    /// A Marathon-LB HAProxy template label: ignored.
    UnsupportedTemplate,
    /// A Marathon-LB label with no meaning here: ignored.
    UnsupportedLabel,
    /// An `HAPROXY_` label nobody defines: ignored.
    UnknownLabel,
    /// A per-port label for a port index the app does not have.
    LabelWithoutPort,
    /// Two apps (or two ports) want the same service port; the first by (app id, index) wins.
    PortConflict,
    /// A service port equal to one of the balancer's own ports; its listener is not opened.
    ReservedPort,
    /// No free port left in the IP-per-task auto-assignment range.
    ServicePortsExhausted,
    /// A task's agent host name did not resolve; that task is not routed.
    UnresolvableHost,
    /// The app or port is not in any group this balancer serves.
    NotInGroup,
    /// `HAPROXY_{n}_ENABLED` is false (or unset under `--strict-mode`).
    Disabled,
    /// No task of the port is routable (running, healthy where checked, with an address): the
    /// port is left out of the table, as Marathon-LB leaves it out.
    NoRoutableTask,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something the operator asked for is not served.
    Error,
    /// Served, but part of the configuration is ignored.
    Warning,
    /// Not served, by the operator's choice (groups, enabled flag) or for now (no task).
    Info,
}

impl ProblemKind {
    pub fn severity(self) -> Severity {
        match self {
            ProblemKind::MalformedApp
            | ProblemKind::InvalidLabel
            | ProblemKind::InvalidPort
            | ProblemKind::PortConflict
            | ProblemKind::ServicePortsExhausted
            | ProblemKind::UnresolvableHost => Severity::Error,
            ProblemKind::UnsupportedTemplate
            | ProblemKind::UnsupportedLabel
            | ProblemKind::UnknownLabel
            | ProblemKind::LabelWithoutPort
            | ProblemKind::ReservedPort => Severity::Warning,
            ProblemKind::NotInGroup | ProblemKind::Disabled | ProblemKind::NoRoutableTask => {
                Severity::Info
            }
        }
    }

    /// The name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::MalformedApp => "malformed_app",
            ProblemKind::InvalidLabel => "invalid_label",
            ProblemKind::InvalidPort => "invalid_port",
            ProblemKind::UnsupportedTemplate => "unsupported_template",
            ProblemKind::UnsupportedLabel => "unsupported_label",
            ProblemKind::UnknownLabel => "unknown_label",
            ProblemKind::LabelWithoutPort => "label_without_port",
            ProblemKind::PortConflict => "port_conflict",
            ProblemKind::ReservedPort => "reserved_port",
            ProblemKind::ServicePortsExhausted => "service_ports_exhausted",
            ProblemKind::UnresolvableHost => "unresolvable_host",
            ProblemKind::NotInGroup => "not_in_group",
            ProblemKind::Disabled => "disabled",
            ProblemKind::NoRoutableTask => "no_routable_task",
        }
    }
}

impl Problem {
    pub fn app(app_id: &str, kind: ProblemKind, message: impl Into<String>) -> Problem {
        Problem {
            app_id: Some(app_id.to_owned()),
            port_index: None,
            label: None,
            kind,
            message: message.into(),
        }
    }

    pub fn port(
        app_id: &str,
        port_index: usize,
        kind: ProblemKind,
        message: impl Into<String>,
    ) -> Problem {
        Problem {
            port_index: Some(port_index),
            ..Problem::app(app_id, kind, message)
        }
    }

    pub fn from_label(app_id: &str, port_index: Option<usize>, issue: LabelIssue) -> Problem {
        let kind = match issue.kind {
            LabelIssueKind::Invalid => ProblemKind::InvalidLabel,
            LabelIssueKind::UnsupportedTemplate => ProblemKind::UnsupportedTemplate,
            LabelIssueKind::Unsupported => ProblemKind::UnsupportedLabel,
            LabelIssueKind::Unknown => ProblemKind::UnknownLabel,
        };
        Problem {
            app_id: Some(app_id.to_owned()),
            port_index,
            label: Some(issue.label),
            kind,
            message: issue.reason,
        }
    }

    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<7} {}",
            format!("{:?}", self.severity()).to_lowercase(),
            self.kind.as_str()
        )?;
        if let Some(app) = &self.app_id {
            write!(f, " app={app}")?;
        }
        if let Some(index) = self.port_index {
            write!(f, " port_index={index}")?;
        }
        if let Some(label) = &self.label {
            write!(f, " label={label}")?;
        }
        write!(f, ": {}", self.message)
    }
}

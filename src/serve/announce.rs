//! The log lines that announce a table: one saying what it changed, then one per problem that
//! appeared or went away. A problem that persists across tables is not logged again, so an
//! operator reads each label problem once, when it starts, and once when it is resolved.

use std::fmt::{self, Write};

use crate::model::{Problem, Severity};
use crate::routing::{RoutingTable, Scope, TableChanges};

/// Problem lines per table and direction (found, resolved); the rest are counted in one line
/// (a first table of thousands of apps must not flood the log; `/routes` lists them all).
const PROBLEM_LINES: usize = 50;

/// What a table changed, owned, so that it can be worked out on another thread (a table built
/// anew is compared backend by backend) and logged by the control loop.
#[derive(Debug)]
pub(super) struct Announcement {
    generation: u64,
    summary: String,
    backends_added: usize,
    backends_removed: usize,
    backends_changed: usize,
    endpoints_added: usize,
    endpoints_removed: usize,
    endpoints_draining: usize,
    found: Vec<Problem>,
    found_total: usize,
    resolved: Vec<Problem>,
    resolved_total: usize,
}

impl Announcement {
    /// What `table` changed in `last`, reading only what `scope` says may differ.
    pub(super) fn new(table: &RoutingTable, last: &RoutingTable, scope: Scope<'_>) -> Announcement {
        let changes: TableChanges<'_> = table.changes_since(last, scope);
        let first = |problems: &[&Problem]| -> Vec<Problem> {
            problems
                .iter()
                .take(PROBLEM_LINES)
                .map(|&p| p.clone())
                .collect()
        };
        Announcement {
            generation: table.generation(),
            summary: changes.to_string(),
            backends_added: changes.backends_added,
            backends_removed: changes.backends_removed,
            backends_changed: changes.backends_changed,
            endpoints_added: changes.endpoints_added,
            endpoints_removed: changes.endpoints_removed,
            endpoints_draining: changes.endpoints_draining,
            found: first(&changes.problems_found),
            found_total: changes.problems_found.len(),
            resolved: first(&changes.problems_resolved),
            resolved_total: changes.problems_resolved.len(),
        }
    }

    /// Logs the table line, then each problem found (an error at WARN, a warning at INFO, an
    /// app left out by choice or for now at DEBUG) and each resolved.
    pub(super) fn log(&self) {
        tracing::info!(
            generation = self.generation,
            changes = self.summary.as_str(),
            backends_added = self.backends_added,
            backends_removed = self.backends_removed,
            backends_changed = self.backends_changed,
            endpoints_added = self.endpoints_added,
            endpoints_removed = self.endpoints_removed,
            endpoints_draining = self.endpoints_draining,
            problems_found = self.found_total,
            problems_resolved = self.resolved_total,
            "routing table published"
        );
        for problem in &self.found {
            found(self.generation, problem);
        }
        for problem in &self.resolved {
            resolved(self.generation, problem);
        }
        let unlogged =
            (self.found_total - self.found.len()) + (self.resolved_total - self.resolved.len());
        if unlogged > 0 {
            tracing::info!(
                generation = self.generation,
                unlogged,
                "more problems changed than are logged one by one: /routes and `switchyard routes` list them all"
            );
        }
    }
}

fn found(generation: u64, p: &Problem) {
    let (kind, app, port_index, label) = fields(p);
    let message = Printable(&p.message);
    match p.severity() {
        Severity::Error => {
            tracing::warn!(generation, kind, app, port_index, label, "{message}")
        }
        Severity::Warning => {
            tracing::info!(generation, kind, app, port_index, label, "{message}")
        }
        Severity::Info => {
            tracing::debug!(generation, kind, app, port_index, label, "{message}")
        }
    }
}

fn resolved(generation: u64, p: &Problem) {
    let (kind, app, port_index, label) = fields(p);
    let message = Printable(&p.message);
    match p.severity() {
        Severity::Error | Severity::Warning => {
            tracing::info!(
                generation,
                kind,
                app,
                port_index,
                label,
                "resolved: {message}"
            )
        }
        Severity::Info => {
            tracing::debug!(
                generation,
                kind,
                app,
                port_index,
                label,
                "resolved: {message}"
            )
        }
    }
}

fn fields(p: &Problem) -> (&'static str, Option<&str>, Option<u64>, Option<&str>) {
    (
        p.kind.as_str(),
        p.app_id.as_deref(),
        p.port_index.map(|i| i as u64),
        p.label.as_deref(),
    )
}

/// A message that quotes label values, with its control characters escaped: a value holding a
/// newline must not forge a line of the text log (fields are quoted already).
struct Printable<'a>(&'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Printable;

    #[test]
    fn control_characters_in_a_message_are_escaped() {
        let forged = "`x\nERROR forged` is not one of roundrobin\r\u{1b}[31m";
        assert_eq!(
            Printable(forged).to_string(),
            "`x\\nERROR forged` is not one of roundrobin\\r\\u{1b}[31m"
        );
    }
}

//! The log lines that announce a table: one saying what it changed, then one per problem that
//! appeared or went away. A problem that persists across tables is not logged again, so an
//! operator reads each label problem once, when it starts, and once when it is resolved.

use std::fmt::{self, Write};
use std::sync::Arc;
use std::time::SystemTime;

use crate::admin::GenerationEntry;
use crate::model::{Problem, Severity};
use crate::routing::{Backend, ChangeKind, RoutingTable, Scope, TableChanges};

/// Problem lines per table, direction (found, resolved) and severity; the rest are counted in
/// one line (a first table of thousands of apps must not flood the log; `/routes` lists them
/// all). Per severity, so that a flood of info never hides an error.
const PROBLEM_LINES: usize = 50;

/// What a table changed, owned, so that it can be worked out on another thread (a table built
/// anew is compared backend by backend) and logged by the control loop.
#[derive(Debug)]
pub(super) struct Announcement {
    generation: u64,
    /// The status page's entry for the table, and the backends it added (for the traffic
    /// history), taken from the same comparison.
    pub(super) entry: GenerationEntry,
    pub(super) added: Vec<Arc<Backend>>,
    summary: String,
    backends_added: usize,
    backends_removed: usize,
    backends_changed: usize,
    endpoints_added: usize,
    endpoints_removed: usize,
    endpoints_draining: usize,
    found: Lines,
    resolved: Lines,
}

/// The problems of one direction to log one by one, and how many of each severity are not.
#[derive(Debug, Default)]
struct Lines {
    shown: Vec<Problem>,
    /// By severity: errors, warnings, info.
    unshown: [usize; 3],
    total: usize,
}

impl Lines {
    fn new(problems: &[&Problem]) -> Lines {
        let mut lines = Lines {
            total: problems.len(),
            ..Lines::default()
        };
        let mut shown = [0; 3];
        for &problem in problems {
            let at = severity_index(problem.severity());
            if shown[at] < PROBLEM_LINES {
                shown[at] += 1;
                lines.shown.push(problem.clone());
            } else {
                lines.unshown[at] += 1;
            }
        }
        lines
    }
}

fn severity_index(severity: Severity) -> usize {
    match severity {
        Severity::Error => 0,
        Severity::Warning => 1,
        Severity::Info => 2,
    }
}

impl Announcement {
    /// What `table` changed in `last`, reading only what `scope` says may differ.
    pub(super) fn new(table: &RoutingTable, last: &RoutingTable, scope: Scope<'_>) -> Announcement {
        let changes: TableChanges<'_> = table.changes_since(last, scope);
        let added = changes
            .backends
            .iter()
            .filter(|c| c.kind == ChangeKind::Added)
            .filter_map(|c| table.backend(c.app_id.as_str(), &c.name).cloned())
            .collect();
        Announcement {
            generation: table.generation(),
            entry: GenerationEntry::new(table, &changes, crate::admin::unix_ms(SystemTime::now())),
            added,
            summary: changes.to_string(),
            backends_added: changes.backends_added,
            backends_removed: changes.backends_removed,
            backends_changed: changes.backends_changed,
            endpoints_added: changes.endpoints_added,
            endpoints_removed: changes.endpoints_removed,
            endpoints_draining: changes.endpoints_draining,
            found: Lines::new(&changes.problems_found),
            resolved: Lines::new(&changes.problems_resolved),
        }
    }

    /// Logs the table line, then each problem found (an error at WARN, a warning at INFO, an
    /// app left out by choice or for now at DEBUG) and each resolved.
    pub(super) fn log(&self) {
        let generation = self.generation;
        tracing::info!(
            generation,
            changes = self.summary.as_str(),
            backends_added = self.backends_added,
            backends_removed = self.backends_removed,
            backends_changed = self.backends_changed,
            endpoints_added = self.endpoints_added,
            endpoints_removed = self.endpoints_removed,
            endpoints_draining = self.endpoints_draining,
            problems_found = self.found.total,
            problems_resolved = self.resolved.total,
            "routing table published"
        );
        for problem in &self.found.shown {
            found(generation, problem);
        }
        for problem in &self.resolved.shown {
            resolved(generation, problem);
        }
        let [errors, warnings, info] =
            [0, 1, 2].map(|at| self.found.unshown[at] + self.resolved.unshown[at]);
        const MORE: &str =
            "more problems changed than are logged one by one: /routes and `switchyard routes` list them all";
        if errors + warnings > 0 {
            tracing::info!(generation, errors, warnings, "{MORE}");
        }
        if info > 0 {
            tracing::debug!(generation, info, "{MORE}");
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
    use super::{Lines, Printable, PROBLEM_LINES};
    use crate::model::{Problem, ProblemKind};

    #[test]
    fn a_flood_of_info_never_hides_an_error() {
        let mut problems: Vec<Problem> = (0..PROBLEM_LINES + 10)
            .map(|i| {
                Problem::app(
                    &format!("/a{i:03}"),
                    ProblemKind::NotInGroup,
                    "not in group",
                )
            })
            .collect();
        problems.push(Problem::app("/z", ProblemKind::InvalidLabel, "bad"));
        let refs: Vec<&Problem> = problems.iter().collect();
        let lines = Lines::new(&refs);
        assert!(lines
            .shown
            .iter()
            .any(|p| p.kind == ProblemKind::InvalidLabel));
        assert_eq!(lines.shown.len(), PROBLEM_LINES + 1);
        assert_eq!(lines.unshown, [0, 0, 10]);
        assert_eq!(lines.total, PROBLEM_LINES + 11);
    }

    #[test]
    fn control_characters_in_a_message_are_escaped() {
        let forged = "`x\nERROR forged` is not one of roundrobin\r\u{1b}[31m";
        assert_eq!(
            Printable(forged).to_string(),
            "`x\\nERROR forged` is not one of roundrobin\\r\\u{1b}[31m"
        );
    }
}

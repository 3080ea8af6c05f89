//! The status page at `/`: the routing table rendered here, so the page is useful without
//! JavaScript, then kept live by an inline script (`page/status.js`) that polls `/routes` and
//! `/stats` every second. No external assets. Hosts, app ids, labels and problem messages come
//! from users' app definitions: everything from the table is escaped here, and the script only
//! ever sets text.

use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write as _};

use crate::model::{Problem, ProblemKind, Severity, TaskEndpoint};
use crate::routing::report::RoutesReport;
use crate::routing::{Backend, RoutingTable};
use crate::upstream::Target;

const TEMPLATE: &str = include_str!("page/status.html");
const CSS: &str = include_str!("page/status.css");
const SCRIPT: &str = include_str!("page/status.js");

pub fn html(table: &RoutingTable) -> String {
    let report = RoutesReport::new(table);
    let mut out = String::with_capacity(TEMPLATE.len() + CSS.len() + SCRIPT.len() + 4096);
    fill(TEMPLATE, &mut out, |name, out| match name {
        "css" => out.push_str(CSS),
        "script" => out.push_str(SCRIPT),
        "generation" => push_display(out, table.generation()),
        "route_count" => push_display(out, report.routes.len()),
        "problem_count" => push_display(out, report.problems.len()),
        "routes" => routes(table, &report, out),
        "problems" => problems(report.problems, out),
        "severities" => severities(out),
        _ => unreachable!("the template names `{name}`, which `html` does not fill"),
    });
    out
}

/// Copies `template` into `out`, replacing each `{{name}}` with what `value` writes. One pass:
/// what `value` writes is never searched for markers.
fn fill(template: &str, out: &mut String, mut value: impl FnMut(&str, &mut String)) {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        value(&rest[start + 2..start + len], out);
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
}

fn push_display(out: &mut String, value: impl fmt::Display) {
    let _ = write!(out, "{value}");
}

/// Text made safe for HTML element content and quoted attribute values.
struct Escape<'a>(&'a str);

impl fmt::Display for Escape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// One row per route, as `/routes` lists them, with the endpoints of its backend.
fn routes(table: &RoutingTable, report: &RoutesReport<'_>, out: &mut String) {
    let backends: HashMap<&str, &Backend> =
        table.backends().iter().map(|b| (&*b.name, &**b)).collect();
    for row in &report.routes {
        let _ = write!(
            out,
            r#"<tr class="route" data-listener="{listener}" data-host="{host}" data-path="{path}" data-app="{app}" data-backend="{backend}"><td>{listener}</td><td>{host}</td><td>{path}</td><td title="backend {backend}">{app}</td><td>"#,
            listener = Escape(&row.listener),
            host = Escape(&row.host),
            path = Escape(&row.path),
            app = Escape(row.app_id),
            backend = Escape(row.backend),
        );
        match backends.get(row.backend) {
            Some(backend) if !backend.targets.is_empty() => {
                for (endpoint, target) in backend.endpoints().iter().zip(&backend.targets) {
                    endpoint_chip(endpoint, target, out);
                }
            }
            _ => out.push_str(r#"<span class="none">no endpoints</span>"#),
        }
        out.push_str("</td></tr>\n");
    }
    if report.routes.is_empty() {
        out.push_str(r#"<tr><td class="empty" colspan="5">No routes: no app is exposed by this balancer.</td></tr>"#);
    }
}

/// The same markup as the script's `endpoint`.
fn endpoint_chip(endpoint: &TaskEndpoint, target: &Target, out: &mut String) {
    let (key, label) = health(target);
    let in_flight = target.state.in_flight();
    let _ = write!(
        out,
        r#"<span class="ep {key}" data-endpoint="{addr}" data-health="{key}" data-in-flight="{in_flight}" title="task {task} ({state}): {label}, {in_flight} in flight"><i class="dot"></i>{addr}"#,
        addr = endpoint.addr,
        task = Escape(&endpoint.task_id),
        state = format!("{:?}", endpoint.state).to_lowercase(),
    );
    if key != "up" {
        let _ = write!(out, "<em>{label}</em>");
    }
    let busy = if in_flight > 0 {
        r#" class="busy""#
    } else {
        ""
    };
    let _ = write!(out, "<b{busy}>{in_flight}</b></span>");
}

/// (class, words): an active check failing says the most, then a passive back-off, then a drain.
fn health(target: &Target) -> (&'static str, &'static str) {
    if target.state.is_check_failed() {
        ("check-failed", "check failed")
    } else if target.state.is_down() {
        ("down", "down")
    } else if target.draining {
        ("draining", "draining")
    } else {
        ("up", "up")
    }
}

fn problems(problems: &[Problem], out: &mut String) {
    for p in problems {
        let severity = severity_name(p.severity());
        let dash = |v: Option<String>| v.map_or("–".to_owned(), |v| Escape(&v).to_string());
        let _ = write!(
            out,
            r#"<tr class="problem" data-severity="{severity}" data-kind="{kind}" data-app="{app_attr}"><td><span class="sev {severity}">{severity}</span></td><td class="mono">{kind}</td><td>{app}</td><td>{port}</td><td class="mono">{label}</td><td>{message}</td></tr>"#,
            kind = p.kind.as_str(),
            app_attr = Escape(p.app_id.as_deref().unwrap_or("")),
            app = dash(p.app_id.clone()),
            port = dash(p.port_index.map(|i| i.to_string())),
            label = dash(p.label.clone()),
            message = Escape(&p.message),
        );
        out.push('\n');
    }
    if problems.is_empty() {
        out.push_str(r#"<tr><td class="empty" colspan="6">No problems.</td></tr>"#);
    }
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// Every problem kind, for the script's kind → severity map (`/routes` names only the kind).
const KINDS: [ProblemKind; 14] = [
    ProblemKind::MalformedApp,
    ProblemKind::InvalidLabel,
    ProblemKind::InvalidPort,
    ProblemKind::UnsupportedTemplate,
    ProblemKind::UnsupportedLabel,
    ProblemKind::UnknownLabel,
    ProblemKind::LabelWithoutPort,
    ProblemKind::PortConflict,
    ProblemKind::ReservedPort,
    ProblemKind::ServicePortsExhausted,
    ProblemKind::UnresolvableHost,
    ProblemKind::NotInGroup,
    ProblemKind::Disabled,
    ProblemKind::NoRoutableTask,
];

/// Stops compiling when a kind is added: add it to `KINDS` too.
#[allow(dead_code)]
fn every_kind_is_listed(kind: ProblemKind) {
    use ProblemKind::*;
    match kind {
        MalformedApp
        | InvalidLabel
        | InvalidPort
        | UnsupportedTemplate
        | UnsupportedLabel
        | UnknownLabel
        | LabelWithoutPort
        | PortConflict
        | ReservedPort
        | ServicePortsExhausted
        | UnresolvableHost
        | NotInGroup
        | Disabled
        | NoRoutableTask => {}
    }
}

/// A JSON object inside `<script type="application/json">`: only fixed names, nothing from the
/// table, so nothing there can close the element.
fn severities(out: &mut String) {
    let map: BTreeMap<&str, &str> = KINDS
        .iter()
        .map(|k| (k.as_str(), severity_name(k.severity())))
        .collect();
    out.push_str(&serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_makes_markup_text() {
        let hostile = r#"<img src=x onerror="alert('x')">&amp;"#;
        assert_eq!(
            Escape(hostile).to_string(),
            "&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;amp;"
        );
        assert_eq!(Escape("shop.example.com").to_string(), "shop.example.com");
        assert_eq!(Escape("").to_string(), "");
        assert_eq!(Escape("é<ü>").to_string(), "é&lt;ü&gt;");
    }

    #[test]
    fn fill_is_one_pass() {
        let mut out = String::new();
        fill("a{{x}}b{{y}}c{{", &mut out, |name, out| {
            out.push_str(if name == "x" { "{{y}}" } else { "Y" })
        });
        assert_eq!(out, "a{{y}}bYc{{");
    }

    #[test]
    fn user_strings_are_escaped_in_the_page() {
        let problem = Problem::port(
            "/evil",
            0,
            ProblemKind::InvalidLabel,
            "`<script>alert(1)</script>` is not one of roundrobin",
        );
        let mut out = String::new();
        problems(&[problem], &mut out);
        assert!(!out.contains("<script>"), "{out}");
        assert!(
            out.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{out}"
        );
        assert!(out.contains(r#"data-severity="error""#), "{out}");
    }

    #[test]
    fn every_marker_is_filled() {
        let page = html(&RoutingTable::default());
        assert!(page.contains(r#"<dd id="generation">0</dd>"#));
        assert!(page.contains("No routes"));
        assert!(page.contains(r#""invalid_label":"error""#));
        assert!(!page.contains("{{"), "an unfilled marker");
        assert!(!page.contains("http://") && !page.contains("https://"));
    }
}

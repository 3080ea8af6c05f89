//! The status page at `/`: the routing table rendered here, app by app, so the page is useful
//! without JavaScript, then kept live by an inline script (`page/*.js`) that polls `/stats`,
//! `/routes` when the generation moves, and `/history` for the charts. No external assets.
//! Hosts, app ids, labels and problem messages come from users' app definitions: everything
//! from the table is escaped here, and the script only ever sets text.

mod apps;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use crate::model::{Problem, ProblemKind, Severity};
use crate::routing::report::RoutesReport;
use crate::routing::RoutingTable;

const TEMPLATE: &str = include_str!("page/status.html");
const CSS: &str = include_str!("page/status.css");
/// One script in this order, inside one function: each file uses what those before define.
const SCRIPTS: [&str; 4] = [
    include_str!("page/dom.js"),
    include_str!("page/charts.js"),
    include_str!("page/apps.js"),
    include_str!("page/status.js"),
];

pub fn html(table: &RoutingTable) -> String {
    let report = RoutesReport::new(table);
    let scripts: usize = SCRIPTS.iter().map(|s| s.len()).sum();
    let mut out = String::with_capacity(TEMPLATE.len() + CSS.len() + scripts + 4096);
    fill(TEMPLATE, &mut out, |name, out| match name {
        "css" => out.push_str(CSS),
        "script" => SCRIPTS.iter().for_each(|s| out.push_str(s)),
        "version" => out.push_str(env!("CARGO_PKG_VERSION")),
        "generation" => push_display(out, table.generation()),
        "app_count" => {
            let apps: BTreeSet<&str> = report.backends.iter().map(|b| b.app_id).collect();
            push_display(out, apps.len())
        }
        "problem_count" => push_display(out, report.problems.len()),
        "apps" => apps::apps(table, &report, out),
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

fn problems(problems: &[Problem], out: &mut String) {
    for p in problems {
        let severity = severity_name(p.severity());
        let dash = |v: Option<String>| v.map_or("–".to_owned(), |v| Escape(&v).to_string());
        let _ = write!(
            out,
            r#"<tr class="problem" data-severity="{severity}" data-kind="{kind}" data-app="{app_attr}"><td data-label="Severity"><span class="sev {severity}">{severity}</span></td><td class="mono" data-label="Kind">{kind}</td><td data-label="App">{app}</td><td data-label="Port index">{port}</td><td class="mono" data-label="Label">{label}</td><td data-label="Message">{message}</td></tr>"#,
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
        assert!(page.contains("No apps"));
        assert!(page.contains(r#""invalid_label":"error""#));
        assert!(!page.contains("{{"), "an unfilled marker");
        // No external assets: the one address in the page is the SVG namespace, a name.
        let svg = "http://www.w3.org/2000/svg";
        assert_eq!(page.matches("http://").count(), page.matches(svg).count());
        assert!(!page.contains("https://") && !page.contains("url("));
    }
}

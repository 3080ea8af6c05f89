//! The DC/OS Universe package in `universe/switchyard/0/`, checked the way Universe's
//! `scripts/validate_packages.py` checks a package and rendered the way Cosmos renders
//! `marathon.json.mustache` on `dcos package install --options=<file>`.
//!
//! Cosmos (`PackageDefinitionRenderer.renderMarathonV2App`):
//! 1. options = the `default`s of `config.json` (nested `properties` kept nested) deep-merged with
//!    the user's options file: objects merge key by key, anything else (arrays included) from the
//!    user replaces the default;
//! 2. the merged options are validated against `config.json` (draft-04);
//! 3. the context is the options plus `resource` = `resource.json`;
//! 4. mustache renders with HTML escaping turned off, and every string of the context is
//!    JSON-string-escaped beforehand (quotes, backslashes and control characters escaped, the
//!    surrounding quotes dropped); numbers that are integers render as integers;
//! 5. the output must parse as a JSON object.
//!
//! The `mustache` crate (0.9) always HTML-escapes `{{x}}` and has no switch for it, so
//! [`render`] rewrites every escaped variable tag `{{x}}` of the template into the unescaped
//! form `{{&x}}` before compiling it: the same output as Cosmos's pass-through `encode`, with the
//! template file left in the usual Universe `{{x}}` form. The JSON escaping of step 4 is done
//! while converting the options to the crate's `Data` ([`to_data`]). Both are proved by
//! options holding a quote, a backslash, a newline and `<&>`.
//!
//! Cosmos's rendering, emulated, and the helpers on the rendered app are here; the checks are in
//! `rendering`, `package_files` and `marathon_lb_options` (a Marathon-LB options file, renamed,
//! installs Switchyard and means what it meant).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use clap::Parser;
use mustache::Data;
use serde_json::{json, Map, Value};
use switchyard::cli::{Cli, LogFormat, SourceMode};

mod marathon_lb_options;
mod package_files;
mod rendering;

const PACKAGE: &str = "switchyard";
const REVISION: &str = "0";
/// The files a packaging-4.0 package may hold (`command.json` is forbidden from 4.0 on).
const PACKAGE_FILES: [&str; 4] = [
    "package.json",
    "config.json",
    "marathon.json.mustache",
    "resource.json",
];
/// The balancer's service ports, as Marathon-LB's package reserves them.
const SERVICE_PORTS: std::ops::RangeInclusive<u64> = 10000..=10100;
/// The ports Marathon-LB's `auto-assign-service-ports` adds, for IP-per-task apps.
const AUTO_ASSIGNED_PORTS: std::ops::RangeInclusive<u64> = 10101..=10150;
/// Marathon-LB's options that configure HAProxy: accepted, documented as ignored, not rendered.
const IGNORED_MARATHON_LB_OPTIONS: [&str; 6] = [
    "haproxy-map",
    "haproxy_global_default_options",
    "max-reload-retries",
    "reload-interval",
    "sysctl-params",
    "template-url",
];

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("universe")
        .join(PACKAGE)
        .join(REVISION)
}

fn read_text(name: &str) -> String {
    let path = package_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_json(name: &str) -> Value {
    serde_json::from_str(&read_text(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

// ---- Cosmos's rendering, emulated -------------------------------------------------------------

/// Cosmos `JsonSchema.extractDefaultsFromSchema`: each property's `default`, or, for a property
/// without one that has `properties`, the object of its own defaults.
fn schema_defaults(schema: &Value) -> Value {
    let mut defaults = Map::new();
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            if let Some(default) = property.get("default") {
                defaults.insert(name.clone(), default.clone());
            } else if property.get("properties").is_some() {
                defaults.insert(name.clone(), schema_defaults(property));
            }
        }
    }
    Value::Object(defaults)
}

/// Cosmos `JsonUtil.merge` (circe's `deepMerge`): objects merge recursively, any other value of
/// `right` replaces the one in `left`.
fn deep_merge(left: &Value, right: &Value) -> Value {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            let mut merged = l.clone();
            for (key, value) in r {
                let value = match l.get(key) {
                    Some(old) => deep_merge(old, value),
                    None => value.clone(),
                };
                merged.insert(key.clone(), value);
            }
            Value::Object(merged)
        }
        (_, right) => right.clone(),
    }
}

/// Cosmos `jsonToJava`: strings JSON-escaped without their quotes, integers (that fit an `Int`)
/// as integers, other numbers as doubles (Java prints large or tiny ones as `1.0E7`, Rust as
/// `10000000`: the same JSON value), booleans, lists and maps as such.
fn to_data(value: &Value) -> Data {
    match value {
        Value::Null => Data::Null,
        Value::Bool(b) => Data::Bool(*b),
        Value::Number(n) => {
            let text = match n.as_i64().and_then(|i| i32::try_from(i).ok()) {
                Some(int) => int.to_string(),
                None => {
                    let float = n.as_f64().expect("a JSON number is an f64");
                    if float.fract() == 0.0 && float.abs() <= f64::from(i32::MAX) {
                        format!("{float:.0}")
                    } else {
                        float.to_string()
                    }
                }
            };
            Data::String(text)
        }
        Value::String(s) => {
            let quoted = serde_json::to_string(s).expect("a string serializes");
            Data::String(quoted[1..quoted.len() - 1].to_owned())
        }
        Value::Array(items) => Data::Vec(items.iter().map(to_data).collect()),
        Value::Object(map) => Data::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), to_data(v)))
                .collect::<HashMap<_, _>>(),
        ),
    }
}

/// Turns every escaped variable tag `{{x}}` into `{{&x}}` (sections, inverted sections,
/// comments, partials, `{{{x}}}` and `{{&x}}` are left alone): Cosmos's mustache factory
/// passes values through unescaped.
fn without_html_escaping(template: &str) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at + 2]);
        rest = &rest[at + 2..];
        let sigil = rest.trim_start().chars().next();
        if !matches!(
            sigil,
            Some('#' | '^' | '/' | '!' | '>' | '&' | '{' | '=' | '$' | '<')
        ) {
            out.push('&');
        }
    }
    out.push_str(rest);
    out
}

/// The merged options Cosmos validates and renders with: `config.json` defaults + `user`.
fn merged_options(user: &Value) -> Value {
    deep_merge(&schema_defaults(&read_json("config.json")), user)
}

/// Renders the package's `marathon.json.mustache` with `user` options as Cosmos does and returns
/// the Marathon app; panics (naming the problem) where Cosmos would refuse.
fn render(user: &Value) -> Value {
    let options = merged_options(user);
    let validator = config_validator();
    let errors: Vec<String> = validator
        .iter_errors(&options)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "options rejected by config.json: {errors:?}"
    );
    let context = deep_merge(&options, &json!({ "resource": read_json("resource.json") }));
    let template =
        mustache::compile_str(&without_html_escaping(&read_text("marathon.json.mustache")))
            .expect("marathon.json.mustache compiles");
    let text = template
        .render_data_to_string(&to_data(&context))
        .expect("marathon.json.mustache renders");
    let app: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("rendered template is not JSON ({e}):\n{text}"));
    assert!(app.is_object(), "rendered template is not a JSON object");
    app
}

/// `config.json` compiled as draft-04, as Universe's `Draft4Validator` and Cosmos compile it.
///
/// Its `"$schema": "http://json-schema.org/schema#"` (what Universe packages write; in the
/// draft-04 days it meant "the latest draft") is not a URI the `jsonschema` crate knows, and even
/// with the draft fixed it tries to fetch it, which needs the network (`resolve-http` is off).
/// Registering that URI as a reference to the built-in draft-04 meta-schema keeps it offline.
fn config_validator() -> jsonschema::Validator {
    draft4_validator(&read_json("config.json"))
}

fn draft4_validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::draft4::options()
        .with_resource(
            "http://json-schema.org/schema",
            jsonschema::Draft::Draft4
                .create_resource(json!({"$ref": "http://json-schema.org/draft-04/schema#"})),
        )
        .build(schema)
        .unwrap_or_else(|e| panic!("does not compile as a draft-04 schema: {e}"))
}

// ---- helpers on the rendered app --------------------------------------------------------------

fn host_ports(app: &Value) -> Vec<u64> {
    app["portDefinitions"]
        .as_array()
        .expect("portDefinitions")
        .iter()
        .map(|p| p["port"].as_u64().expect("a numeric port"))
        .collect()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|s| s.as_str().expect("a string"))
        .collect()
}

/// The one health check, which must hit `/_haproxy_health_check` on port 9090.
fn assert_health_check_on_admin_port(app: &Value) {
    let checks = app["healthChecks"].as_array().expect("healthChecks");
    assert_eq!(checks.len(), 1, "{checks:?}");
    let check = &checks[0];
    assert_eq!(check["protocol"], "MESOS_HTTP");
    assert_eq!(check["path"], "/_haproxy_health_check");
    let index = check["portIndex"].as_u64().expect("portIndex") as usize;
    assert_eq!(host_ports(app).get(index), Some(&9090), "portIndex {index}");
    assert_eq!(check["gracePeriodSeconds"], 60);
    assert_eq!(check["intervalSeconds"], 5);
    assert_eq!(check["timeoutSeconds"], 2);
    assert_eq!(check["maxConsecutiveFailures"], 2);
}

/// The host ports the app reserves: with or without 80 and 443, with or without the ports
/// auto-assigned to IP-per-task apps.
fn expected_ports(bind_http_https: bool, auto_assign: bool) -> Vec<u64> {
    let fixed: &[u64] = if bind_http_https {
        &[80, 443, 9090, 9091]
    } else {
        &[9090, 9091]
    };
    let auto = AUTO_ASSIGNED_PORTS.filter(|_| auto_assign);
    fixed
        .iter()
        .copied()
        .chain(SERVICE_PORTS)
        .chain(auto)
        .collect()
}

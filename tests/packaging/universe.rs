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

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use clap::Parser;
use mustache::Data;
use serde_json::{json, Map, Value};
use switchyard::cli::{Cli, LogFormat, SourceMode};

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

fn expected_ports(bind_http_https: bool) -> Vec<u64> {
    let fixed: &[u64] = if bind_http_https {
        &[80, 443, 9090, 9091]
    } else {
        &[9090, 9091]
    };
    fixed.iter().copied().chain(SERVICE_PORTS).collect()
}

// ---- rendering --------------------------------------------------------------------------------

#[test]
fn renders_marathon_lbs_app_with_the_defaults() {
    let app = render(&json!({}));

    let mut port_definitions = vec![
        json!({"port": 80, "protocol": "tcp", "name": "http"}),
        json!({"port": 443, "protocol": "tcp", "name": "https"}),
        json!({"port": 9090, "protocol": "tcp", "name": "admin"}),
        json!({"port": 9091, "protocol": "tcp", "name": "app-id"}),
    ];
    port_definitions.extend(SERVICE_PORTS.map(|port| json!({"port": port, "protocol": "tcp"})));
    let expected = json!({
        "id": "switchyard",
        "instances": 1,
        "cpus": 2,
        "mem": 1024,
        "container": {
            "type": "DOCKER",
            "docker": {
                "image": "switchyard/switchyard:0.1.0",
                "parameters": [
                    {"key": "label", "value": "created_by=marathon"},
                    {"key": "label", "value": "dcos_pkg_name=switchyard"}
                ]
            }
        },
        "networks": [{"mode": "host"}],
        "acceptedResourceRoles": ["slave_public"],
        "constraints": [["hostname", "UNIQUE"]],
        "healthChecks": [{
            "path": "/_haproxy_health_check",
            "portIndex": 2,
            "protocol": "MESOS_HTTP",
            "gracePeriodSeconds": 60,
            "intervalSeconds": 5,
            "timeoutSeconds": 2,
            "maxConsecutiveFailures": 2,
            "ignoreHttp1xx": false
        }],
        "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.2},
        "args": ["sse", "-m", "http://marathon.mesos:8080", "--health-check", "--group", "external"],
        "requirePorts": true,
        "portDefinitions": port_definitions
    });
    assert_eq!(
        app,
        expected,
        "rendered:\n{}",
        serde_json::to_string_pretty(&app).unwrap()
    );

    // The parts a drop-in replacement for Marathon-LB's package must keep, spelled out.
    assert_eq!(
        strings(&app["args"]),
        [
            "sse",
            "-m",
            "http://marathon.mesos:8080",
            "--health-check",
            "--group",
            "external"
        ]
    );
    assert_eq!(host_ports(&app), expected_ports(true));
    assert_eq!(app["requirePorts"], true);
    assert_health_check_on_admin_port(&app);
    assert!(app.get("secrets").is_none());
    assert!(app.get("env").is_none());
    assert!(app["container"].get("volumes").is_none());
    // Integral numbers render as integers, as Cosmos renders them (mem's default is 1024.0).
    assert!(app["mem"].is_u64() && app["cpus"].is_u64(), "{app}");
}

#[test]
fn renders_every_option_and_json_escapes_values() {
    let odd = "a \"quoted\" C:\\path\nand <&> 'x'";
    let user = json!({
        "switchyard": {
            "name": "/lb/edge",
            "instances": 3,
            "cpus": 1.5,
            "mem": 512,
            "role": "lb_role",
            "group": "internal",
            "marathon-uri": "https://marathon.mesos:8443",
            "strict-mode": true,
            "bind-http-https": false,
            "ssl-cert": "/etc/switchyard/certs",
            "secret_name": "switchyard/service-account",
            "extra-args": ["--access-log", "--log-format", "json", odd],
            "minimumHealthCapacity": 1,
            "maximumOverCapacity": 0
        }
    });
    let app = render(&user);

    assert_eq!(app["id"], "/lb/edge");
    assert_eq!(app["instances"], 3);
    assert_eq!(app["cpus"], 1.5);
    assert_eq!(app["mem"], 512);
    assert_eq!(app["acceptedResourceRoles"], json!(["lb_role"]));
    assert_eq!(
        strings(&app["args"]),
        [
            "sse",
            "-m",
            "https://marathon.mesos:8443",
            "--health-check",
            "--group",
            "internal",
            "--strict-mode",
            "--dont-bind-http-https",
            "--ssl-certs",
            "/etc/switchyard/certs",
            "--access-log",
            "--log-format",
            "json",
            odd
        ]
    );
    assert_eq!(
        app["container"]["volumes"],
        json!([{
            "containerPath": "/etc/switchyard/certs",
            "hostPath": "/etc/switchyard/certs",
            "mode": "RO"
        }])
    );
    assert_eq!(
        app["env"],
        json!({"DCOS_SERVICE_ACCOUNT_CREDENTIAL": {"secret": "serviceCredential"}})
    );
    assert_eq!(
        app["secrets"],
        json!({"serviceCredential": {"source": "switchyard/service-account"}})
    );
    // Without ports 80 and 443 the health check's portIndex moves to keep pointing at 9090.
    assert_eq!(host_ports(&app), expected_ports(false));
    assert_health_check_on_admin_port(&app);
    assert_eq!(
        app["upgradeStrategy"],
        json!({"minimumHealthCapacity": 1, "maximumOverCapacity": 0})
    );
}

#[test]
fn a_string_with_quotes_backslashes_and_html_characters_reaches_the_app_unchanged() {
    for value in [
        "a \"quoted\" group",
        "back\\slash\\",
        "<script>&amp;</script>",
        "tab\tand\nnewline and \u{1} control",
        "caf\u{e9} \u{2603}",
    ] {
        let app = render(&json!({"switchyard": {
            "group": value,
            "secret_name": value,
            "extra-args": [value, value],
        }}));
        assert_eq!(app["args"][5], value);
        assert_eq!(app["args"][6], value);
        assert_eq!(app["args"][7], value);
        assert_eq!(app["secrets"]["serviceCredential"]["source"], value);
    }
}

#[test]
fn every_combination_of_the_optional_sections_renders_valid_json() {
    for bits in 0..32u8 {
        let strict = bits & 1 != 0;
        let bind = bits & 2 != 0;
        let secret = bits & 4 != 0;
        let cert = bits & 8 != 0;
        let role = bits & 16 != 0;
        let user = json!({"switchyard": {
            "strict-mode": strict,
            "bind-http-https": bind,
            "secret_name": if secret { "sa/secret" } else { "" },
            "ssl-cert": if cert { "/certs" } else { "" },
            "role": if role { "slave_public" } else { "" },
        }});
        let app = render(&user);
        let context = format!("{user}");

        let mut args = vec!["sse", "-m", "http://marathon.mesos:8080"];
        args.extend(["--health-check", "--group", "external"]);
        if strict {
            args.push("--strict-mode");
        }
        if !bind {
            args.push("--dont-bind-http-https");
        }
        if cert {
            args.extend(["--ssl-certs", "/certs"]);
        }
        assert_eq!(strings(&app["args"]), args, "{context}");
        assert_eq!(host_ports(&app), expected_ports(bind), "{context}");
        assert_health_check_on_admin_port(&app);
        assert_eq!(app.get("secrets").is_some(), secret, "{context}");
        assert_eq!(app.get("env").is_some(), secret, "{context}");
        if secret {
            assert_eq!(
                app["env"],
                json!({"DCOS_SERVICE_ACCOUNT_CREDENTIAL": {"secret": "serviceCredential"}})
            );
        }
        assert_eq!(app["container"].get("volumes").is_some(), cert, "{context}");
        // Marathon-LB's template: an empty role drops acceptedResourceRoles (any agent).
        assert_eq!(
            app.get("acceptedResourceRoles").is_some(),
            role,
            "{context}"
        );
    }
}

/// The container's entrypoint is the binary (see the Dockerfile), so the app's `args` are its
/// command line: every rendering must be one the CLI accepts, meaning what the options said.
#[test]
fn the_rendered_args_are_a_command_line_the_balancer_accepts() {
    let parse = |app: &Value| {
        let argv = std::iter::once("switchyard").chain(strings(&app["args"]));
        Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("the CLI rejects {}: {e}", app["args"]))
    };

    let cli = parse(&render(&json!({})));
    assert!(cli.command.is_none(), "serve mode");
    assert_eq!(cli.serve.mode, Some(SourceMode::Sse));
    assert_eq!(cli.serve.access.marathon, ["http://marathon.mesos:8080"]);
    assert_eq!(cli.serve.routing.group, ["external"]);
    assert!(cli.serve.routing.health_check && !cli.serve.routing.no_health_check);
    assert!(!cli.serve.routing.strict_mode && !cli.serve.dont_bind_http_https);
    assert!(cli.serve.ssl_certs.is_empty());

    let cli = parse(&render(&json!({"switchyard": {
        "group": "internal",
        "marathon-uri": "https://marathon.mesos:8443",
        "strict-mode": true,
        "bind-http-https": false,
        "ssl-cert": "/etc/switchyard/certs",
        "extra-args": ["--access-log", "--log-format", "json"],
    }})));
    assert_eq!(cli.serve.access.marathon, ["https://marathon.mesos:8443"]);
    assert_eq!(cli.serve.routing.group, ["internal"]);
    assert!(cli.serve.routing.strict_mode && cli.serve.dont_bind_http_https);
    assert_eq!(
        cli.serve.ssl_certs,
        [std::path::PathBuf::from("/etc/switchyard/certs")]
    );
    assert!(cli.serve.limits.access_log);
    assert_eq!(cli.log_format, LogFormat::Json);
}

#[test]
fn options_merge_like_cosmos() {
    let defaults = json!({"a": {"b": 1, "c": [1, 2], "d": {"e": true}}, "f": "x"});
    let user = json!({"a": {"c": [3], "d": {"g": null}}, "h": 2});
    assert_eq!(
        deep_merge(&defaults, &user),
        json!({"a": {"b": 1, "c": [3], "d": {"e": true, "g": null}}, "f": "x", "h": 2})
    );
    // A partial options file keeps every other default.
    let merged = merged_options(&json!({"switchyard": {"group": "internal"}}));
    assert_eq!(merged["switchyard"]["group"], "internal");
    assert_eq!(merged["switchyard"]["name"], "switchyard");
    assert_eq!(
        merged["switchyard"]["marathon-uri"],
        "http://marathon.mesos:8080"
    );
    // An array option is replaced, not appended to.
    let merged = merged_options(&json!({"switchyard": {"extra-args": ["--access-log"]}}));
    assert_eq!(merged["switchyard"]["extra-args"], json!(["--access-log"]));
}

#[test]
fn the_template_compiles_and_references_only_options_and_resources_that_exist() {
    let template = read_text("marathon.json.mustache");
    mustache::compile_str(&template).expect("marathon.json.mustache compiles");

    let config = read_json("config.json");
    let options: BTreeSet<&str> = config["properties"][PACKAGE]["properties"]
        .as_object()
        .expect("config.json properties.switchyard.properties")
        .keys()
        .map(String::as_str)
        .collect();
    let resource = read_json("resource.json");

    // A misspelt name renders as nothing in mustache, silently: check every tag's name.
    let mut used = BTreeSet::new();
    let mut rest = template.as_str();
    while let Some(at) = rest.find("{{") {
        let end = rest[at..].find("}}").expect("a closed tag") + at;
        let tag = rest[at + 2..end].trim_start_matches(['#', '^', '/', '&', '{']);
        let tag = tag.trim();
        rest = &rest[end + 2..];
        if tag == "." {
            continue; // the current item of a section over an array option
        }
        let mut parts = tag.split('.');
        match parts.next() {
            Some(PACKAGE) => {
                let option = parts.next().expect("an option name");
                assert!(parts.next().is_none(), "{tag}");
                assert!(options.contains(option), "{{{{{tag}}}}}: no such option");
                used.insert(option);
            }
            Some("resource") => {
                let mut value = &resource;
                for part in parts {
                    value = value
                        .get(part)
                        .unwrap_or_else(|| panic!("{{{{{tag}}}}}: not in resource.json"));
                }
                assert!(value.is_string(), "{tag}");
            }
            _ => panic!("{{{{{tag}}}}}: neither an option nor a resource"),
        }
    }
    let unused: Vec<_> = options.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "options the template ignores: {unused:?}"
    );
}

// ---- config.json ------------------------------------------------------------------------------

#[test]
fn config_json_is_a_draft_04_schema_whose_defaults_validate() {
    let config = read_json("config.json");
    if let Err(e) = jsonschema::draft4::meta::validate(&config) {
        panic!("config.json is not a draft-04 schema: {e}");
    }
    assert_eq!(config["$schema"], "http://json-schema.org/schema#");
    assert_eq!(config["type"], "object");
    let top = config["properties"].as_object().expect("properties");
    assert_eq!(top.keys().collect::<Vec<_>>(), [PACKAGE]);
    let switchyard = &top[PACKAGE];
    assert_eq!(switchyard["type"], "object");
    for (name, property) in switchyard["properties"].as_object().expect("properties") {
        for key in ["type", "description", "default"] {
            assert!(property.get(key).is_some(), "option {name} has no {key}");
        }
    }
    for required in strings(&switchyard["required"]) {
        assert!(
            switchyard["properties"].get(required).is_some(),
            "required option {required} is not a property"
        );
    }

    let validator = config_validator();
    let defaults = schema_defaults(&config);
    assert!(validator.is_valid(&defaults), "{defaults}");
    let switchyard_defaults = &defaults[PACKAGE];
    assert_eq!(switchyard_defaults["name"], "switchyard");
    assert_eq!(switchyard_defaults["cpus"], 2);
    assert_eq!(switchyard_defaults["mem"], 1024.0);
    assert_eq!(switchyard_defaults["instances"], 1);
    assert_eq!(switchyard_defaults["role"], "slave_public");
    assert_eq!(switchyard_defaults["group"], "external");
    assert_eq!(
        switchyard_defaults["marathon-uri"],
        "http://marathon.mesos:8080"
    );
    assert_eq!(switchyard_defaults["strict-mode"], false);
    assert_eq!(switchyard_defaults["bind-http-https"], true);
    assert_eq!(switchyard_defaults["ssl-cert"], "");
    assert_eq!(switchyard_defaults["secret_name"], "");
    assert_eq!(switchyard_defaults["extra-args"], json!([]));
    assert_eq!(switchyard_defaults["minimumHealthCapacity"], 0.5);
    assert_eq!(switchyard_defaults["maximumOverCapacity"], 0.2);
}

#[test]
fn config_json_rejects_options_of_the_wrong_type_or_range() {
    let validator = config_validator();
    for bad in [
        json!({"switchyard": {"instances": "two"}}),
        json!({"switchyard": {"instances": 1.5}}),
        json!({"switchyard": {"instances": 0}}),
        json!({"switchyard": {"strict-mode": "true"}}),
        json!({"switchyard": {"bind-http-https": 1}}),
        json!({"switchyard": {"group": ["external"]}}),
        json!({"switchyard": {"cpus": "2"}}),
        json!({"switchyard": {"mem": 64}}),
        json!({"switchyard": {"minimumHealthCapacity": 2}}),
        json!({"switchyard": {"secret_name": null}}),
        json!({"switchyard": {"extra-args": "--access-log"}}),
        json!({"switchyard": {"extra-args": [1]}}),
        json!({"switchyard": "external"}),
    ] {
        let options = merged_options(&bad);
        assert!(
            !validator.is_valid(&options),
            "accepted {bad}, merged: {options}"
        );
    }
}

// ---- package.json, resource.json and the files ------------------------------------------------

/// The packaging-4.0 branch of Universe's `repo/meta/schema/package-schema.json` (required
/// fields, known fields only, patterns), written out here.
fn v40_package_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "packagingVersion": {"type": "string", "enum": ["4.0"]},
            "name": {"type": "string"},
            "version": {"type": "string", "pattern": "^[-a-zA-Z0-9.]+$"},
            "scm": {"type": "string"},
            "maintainer": {"type": "string"},
            "website": {"type": "string"},
            "description": {"type": "string"},
            "framework": {"type": "boolean"},
            "upgradesFrom": {"type": "array", "items": {"type": "string"}},
            "downgradesTo": {"type": "array", "items": {"type": "string"}},
            "preInstallNotes": {"type": "string"},
            "postInstallNotes": {"type": "string"},
            "postUninstallNotes": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string", "pattern": "^[^\\s]+$"}},
            "selected": {"type": "boolean"},
            "licenses": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "url": {"type": "string", "pattern": "^https?://"}
                    },
                    "additionalProperties": false,
                    "required": ["name", "url"]
                }
            },
            "minDcosReleaseVersion": {
                "type": "string",
                "pattern": "^(?:0|[1-9][0-9]*)(?:\\.(?:0|[1-9][0-9]*))*$"
            },
            "hasKnownIssues": {"type": "boolean"},
            "lastUpdated": {"type": "number"}
        },
        "required": ["packagingVersion", "name", "version", "maintainer", "description", "tags"],
        "additionalProperties": false
    })
}

fn is_package_name(name: &str) -> bool {
    // ^[a-z][a-z0-9-]*[a-z0-9]$
    let bytes = name.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    bytes.len() >= 2
        && first.is_ascii_lowercase()
        && (last.is_ascii_lowercase() || last.is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

#[test]
fn package_json_is_a_valid_packaging_4_0_package() {
    let package = read_json("package.json");
    let validator = draft4_validator(&v40_package_schema());
    let errors: Vec<String> = validator
        .iter_errors(&package)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "package.json: {errors:?}");

    assert_eq!(package["packagingVersion"], "4.0");
    let name = package["name"].as_str().expect("name");
    assert_eq!(name, PACKAGE);
    assert!(is_package_name(name), "{name}");
    let dir_name = package_dir()
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .map(str::to_owned);
    assert_eq!(
        dir_name.as_deref(),
        Some(name),
        "directory name = package name"
    );
    assert!(
        REVISION.parse::<u32>().is_ok(),
        "revision directories are integers"
    );
    assert!(is_package_name("marathon-lb") && !is_package_name("Switchyard"));
    assert!(!is_package_name("lb-") && !is_package_name("9lb") && !is_package_name("a"));

    // A new crate version is a new package revision, not an edit of this one.
    assert_eq!(package["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(package["minDcosReleaseVersion"], "1.10");
    assert_eq!(package["framework"], false);
    assert_eq!(package["selected"], false);
    for field in [
        "maintainer",
        "description",
        "preInstallNotes",
        "postInstallNotes",
    ] {
        let text = package[field].as_str().unwrap_or_default();
        assert!(!text.trim().is_empty(), "{field} is empty");
    }
    assert!(!strings(&package["tags"]).is_empty());
    let notes = package["preInstallNotes"].as_str().unwrap();
    assert!(notes.contains("secret_name") && notes.contains("service account"));
    let licenses = package["licenses"].as_array().expect("licenses");
    assert!(licenses
        .iter()
        .any(|l| l["name"].as_str().unwrap_or_default().contains("Apache")));
}

#[test]
fn resource_json_names_the_image_of_this_version() {
    let resource = read_json("resource.json");
    let allowed = ["images", "assets", "cli"];
    for key in resource.as_object().expect("an object").keys() {
        assert!(
            allowed.contains(&key.as_str()),
            "resource.json: unknown key {key}"
        );
    }
    let docker = resource["assets"]["container"]["docker"]
        .as_object()
        .expect("assets.container.docker");
    assert!(docker.values().all(Value::is_string));
    assert_eq!(
        docker[PACKAGE],
        format!("switchyard/switchyard:{}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_package_holds_only_ascii_universe_files() {
    let mut files = BTreeSet::new();
    for entry in std::fs::read_dir(package_dir()).expect("the package directory") {
        let entry = entry.unwrap();
        assert!(entry.file_type().unwrap().is_file(), "{:?}", entry.path());
        let name = entry.file_name().into_string().expect("a UTF-8 file name");
        let bytes = std::fs::read(entry.path()).unwrap();
        if let Some(at) = bytes.iter().position(|b| !b.is_ascii()) {
            panic!("{name}: non-ASCII byte at offset {at}");
        }
        // validate_packages.py also refuses escaped \uXXXX literals in JSON files.
        if name.ends_with(".json") {
            assert!(
                !String::from_utf8_lossy(&bytes).contains("\\u"),
                "{name}: \\u escape"
            );
        }
        files.insert(name);
    }
    assert!(
        !files.contains("command.json"),
        "forbidden in packaging 4.0"
    );
    let expected: BTreeSet<String> = PACKAGE_FILES.iter().map(|s| s.to_string()).collect();
    assert_eq!(files, expected);
}

//! The package's files as Universe validates them: `config.json` (a draft-04 schema whose
//! defaults validate and which rejects bad options), `package.json` (packaging 4.0),
//! `resource.json` (this version's image, the icons), only ASCII Universe files, and a template
//! that references only what exists.

use super::*;

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
    // A misspelt option, or a Marathon-LB options file whose top-level key was not renamed,
    // is refused at install rather than silently replaced by a default.
    assert_eq!(config["additionalProperties"], false);
    assert_eq!(switchyard["additionalProperties"], false);
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
    assert_eq!(switchyard_defaults["haproxy-group"], "external");
    assert_eq!(
        switchyard_defaults["marathon-uri"],
        "http://marathon.mesos:8080"
    );
    assert_eq!(switchyard_defaults["strict-mode"], false);
    assert_eq!(switchyard_defaults["bind-http-https"], true);
    assert_eq!(switchyard_defaults["ssl-cert"], "");
    assert_eq!(switchyard_defaults["ssl-cert-path"], "");
    assert_eq!(switchyard_defaults["auto-assign-service-ports"], false);
    assert_eq!(switchyard_defaults["container-syslogd"], false);
    assert_eq!(switchyard_defaults["parameters"], json!([]));
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
        json!({"switchyard": {"haproxy-group": ["external"]}}),
        json!({"switchyard": {"group": "external"}}),
        json!({"switchyard": {"ssl_cert": "-----BEGIN CERTIFICATE-----"}}),
        json!({"marathon-lb": {"haproxy-group": "external"}}),
        json!({"switchyard": {"parameters": [{"key": "label"}]}}),
        json!({"switchyard": {"parameters": [{"key": "a", "value": "b", "other": "c"}]}}),
        json!({"switchyard": {"parameters": {"key": "a", "value": "b"}}}),
        json!({"switchyard": {"auto-assign-service-ports": "yes"}}),
        json!({"switchyard": {"max-reload-retries": "10"}}),
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

/// The icons are PNGs inside resource.json (data: URLs made by `scripts/universe-icons.py`), so
/// the package shows them on a cluster with no way out to the internet.
#[test]
fn resource_json_carries_the_three_icons_as_png_data() {
    use base64::Engine;
    let resource = read_json("resource.json");
    let images = resource["images"].as_object().expect("images");
    let sizes = [
        ("icon-small", 48),
        ("icon-medium", 128),
        ("icon-large", 256),
    ];
    assert_eq!(
        images.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        sizes.iter().map(|(name, _)| *name).collect::<BTreeSet<_>>()
    );
    for (name, size) in sizes {
        let url = images[name].as_str().expect("a string");
        let data = url
            .strip_prefix("data:image/png;base64,")
            .unwrap_or_else(|| panic!("{name} is not a PNG data: URL"));
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(png.len() < 16 * 1024, "{name}: {} bytes", png.len());
        // The signature, then the IHDR chunk: width and height, big-endian.
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}");
        assert_eq!(&png[12..16], b"IHDR", "{name}");
        let side = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        assert_eq!((side(16), side(20)), (size, size), "{name}");
    }
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

// ---- marathon.json.mustache --------------------------------------------------------------------

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
    let mut sections: Vec<String> = Vec::new();
    let mut rest = template.as_str();
    while let Some(at) = rest.find("{{") {
        let end = rest[at..].find("}}").expect("a closed tag") + at;
        let raw = rest[at + 2..end].trim();
        rest = &rest[end + 2..];
        let tag = raw.trim_start_matches(['#', '^', '/', '&', '{']).trim();
        if raw.starts_with('/') {
            assert_eq!(
                sections.pop().as_deref(),
                Some(tag),
                "unbalanced {{{{/{tag}}}}}"
            );
            continue;
        }
        if raw.starts_with(['#', '^']) {
            sections.push(tag.to_owned());
        }
        if tag == "." {
            continue; // the current item of a section over an array option
        }
        // Inside a section over an array of objects: a field of its items.
        if let Some(items) = sections
            .iter()
            .rev()
            .find_map(|s| s.strip_prefix(&format!("{PACKAGE}.")))
            .and_then(|option| {
                config["properties"][PACKAGE]["properties"][option]["items"].get("properties")
            })
        {
            if !tag.contains('.') {
                assert!(
                    items.get(tag).is_some(),
                    "{{{{{tag}}}}}: not a field of the items"
                );
                continue;
            }
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
    assert!(sections.is_empty(), "unclosed sections: {sections:?}");
    // Marathon-LB's options that configure HAProxy are accepted and render nothing.
    let unused: Vec<_> = options.difference(&used).copied().collect();
    assert_eq!(
        unused, IGNORED_MARATHON_LB_OPTIONS,
        "options the template ignores"
    );
}

//! The app definition `switchyard zdd` posts, made from the user's JSON as `zdd.py`'s
//! `prepare_deploy` makes it: the next colour's id (`-blue`/`-green`), the alternate service
//! port, and the `HAPROXY_DEPLOYMENT_*` labels the balancer merges the group by. Pure: JSON in,
//! JSON out.

use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::deployed::Deployed;
use super::ZddError;

/// The labels `zdd` writes (the balancer reads them in `model/labels.rs`).
pub const GROUP: &str = "HAPROXY_DEPLOYMENT_GROUP";
pub const ALT_PORT: &str = "HAPROXY_DEPLOYMENT_ALT_PORT";
pub const COLOUR: &str = "HAPROXY_DEPLOYMENT_COLOUR";
pub const STARTED_AT: &str = "HAPROXY_DEPLOYMENT_STARTED_AT";
pub const TARGET_INSTANCES: &str = "HAPROXY_DEPLOYMENT_TARGET_INSTANCES";
pub const NEW_INSTANCES: &str = "HAPROXY_DEPLOYMENT_NEW_INSTANCES";
pub const APP_ID: &str = "HAPROXY_APP_ID";
pub const PORT_0: &str = "HAPROXY_0_PORT";

/// How the new app is sized.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sizing {
    /// `--initial-instances`.
    pub initial: u32,
    /// `--new-instances`: 0 for a whole deployment, else the new app's share of a split.
    pub new_instances: u32,
}

/// Checks the user's definition as `zdd.py`'s `validate_app` does: an id, and the deployment
/// group and alternate port labels. Returns the group, with a leading `/`.
pub fn validate(app: &Value) -> Result<String, ZddError> {
    let missing = |what: &str| ZddError::MissingField(what.to_owned());
    let id = app.get("id").and_then(Value::as_str).unwrap_or("");
    if id.trim_matches('/').is_empty() {
        return Err(missing("the app has no `id`"));
    }
    let labels = app.get("labels").and_then(Value::as_object);
    let label = |name: &str| labels.and_then(|l| l.get(name)).and_then(Value::as_str);
    let group = label(GROUP)
        .map(str::trim)
        .filter(|g| !g.trim_matches('/').is_empty())
        .ok_or_else(|| missing(&format!("define the {GROUP} label")))?;
    let alt = label(ALT_PORT).ok_or_else(|| missing(&format!("define the {ALT_PORT} label")))?;
    if alt.trim().parse::<u16>().map_or(true, |p| p == 0) {
        return Err(missing(&format!(
            "{ALT_PORT} must be a port number, not `{alt}`"
        )));
    }
    if service_port(app).is_none() {
        return Err(missing(
            "the app has no service port (container.portMappings, portDefinitions or ports)",
        ));
    }
    Ok(normalize_group(group))
}

/// `web` and `/web` are the same group (the balancer adds the `/`).
pub fn normalize_group(group: &str) -> String {
    format!("/{}", group.trim().trim_start_matches('/'))
}

/// The definition to post: `app` as the next colour after `last` (the live app of the group,
/// if any), as `zdd.py`'s `prepare_deploy` makes it. `sizing.new_instances` is capped at the
/// live app's instances, as there.
pub fn prepare(mut app: Value, last: Option<&Deployed>, sizing: Sizing) -> Value {
    let original_port = service_port(&app).unwrap_or(0);
    let (colour, port, target, new_instances) = match last {
        Some(last) => {
            let target = last.instances;
            let new_instances = sizing.new_instances.min(target);
            let share = if new_instances > 0 {
                new_instances
            } else {
                target
            };
            app["instances"] = Value::from(sizing.initial.min(share));
            let port = if last.service_port == last.alt_port {
                last.port_0.unwrap_or(original_port)
            } else {
                last.alt_port.map_or(original_port, u64::from)
            };
            (
                next_colour(last.colour.as_deref()),
                port,
                target,
                new_instances,
            )
        }
        None => {
            let target = app.get("instances").and_then(Value::as_u64).unwrap_or(1) as u32;
            ("blue", original_port, target, 0)
        }
    };
    let id = app
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let labels = labels_mut(&mut app);
    labels.insert(APP_ID.into(), Value::from(id.as_str()));
    labels.insert(PORT_0.into(), Value::from(original_port.to_string()));
    labels.insert(NEW_INSTANCES.into(), Value::from(new_instances.to_string()));
    labels.insert(TARGET_INSTANCES.into(), Value::from(target.to_string()));
    labels.insert(COLOUR.into(), Value::from(colour));
    labels.insert(STARTED_AT.into(), Value::from(now_rfc3339()));
    app["id"] = Value::from(format!("/{}-{colour}", id.trim_matches('/')));
    set_service_port(&mut app, port);
    app
}

/// Blue after green (or anything else), green after blue.
pub fn next_colour(live: Option<&str>) -> &'static str {
    match live {
        Some("blue") => "green",
        _ => "blue",
    }
}

/// The first service port, wherever Marathon's versions keep it: `container.portMappings`
/// (1.5+), `container.docker.portMappings` (1.4), `portDefinitions`, `ports`.
pub fn service_port(app: &Value) -> Option<u64> {
    let container = &app["container"];
    [
        &container["portMappings"][0]["servicePort"],
        &container["docker"]["portMappings"][0]["servicePort"],
        &app["portDefinitions"][0]["port"],
        &app["ports"][0],
    ]
    .into_iter()
    .find_map(|v| v.as_u64().filter(|&p| p != 0))
}

/// Sets the first service port where the definition keeps it (every place it is found).
fn set_service_port(app: &mut Value, port: u64) {
    let slots = [
        "/container/portMappings/0/servicePort",
        "/container/docker/portMappings/0/servicePort",
        "/portDefinitions/0/port",
        "/ports/0",
    ];
    for slot in slots {
        if let Some(value) = app.pointer_mut(slot) {
            *value = Value::from(port);
        }
    }
}

fn labels_mut(app: &mut Value) -> &mut Map<String, Value> {
    if !app["labels"].is_object() {
        app["labels"] = Value::Object(Map::new());
    }
    match &mut app["labels"] {
        Value::Object(labels) => labels,
        _ => unreachable!("just made an object"),
    }
}

/// RFC 3339 in UTC with microseconds (`zdd.py` wrote a naive local time; the balancer reads
/// both).
fn now_rfc3339() -> String {
    DateTime::<Utc>::from(SystemTime::now()).to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn user_app() -> Value {
        json!({"id": "/web", "instances": 4,
               "labels": {"HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_ALT_PORT": "10001",
                          "HAPROXY_0_VHOST": "web.example"},
               "container": {"portMappings": [{"containerPort": 80, "servicePort": 10000}]}})
    }

    #[test]
    fn the_first_deploy_is_blue_on_the_app_s_own_port() {
        let app = prepare(
            user_app(),
            None,
            Sizing {
                initial: 1,
                new_instances: 0,
            },
        );
        assert_eq!(app["id"], "/web-blue");
        assert_eq!(app["instances"], 4, "nothing to replace: all at once");
        assert_eq!(service_port(&app), Some(10000));
        let labels = &app["labels"];
        assert_eq!(labels[COLOUR], "blue");
        assert_eq!(labels[APP_ID], "/web");
        assert_eq!(labels[PORT_0], "10000");
        assert_eq!(labels[TARGET_INSTANCES], "4");
        assert_eq!(labels[NEW_INSTANCES], "0");
        let started = labels[STARTED_AT].as_str().unwrap();
        assert!(DateTime::parse_from_rfc3339(started).is_ok(), "{started}");
    }

    #[test]
    fn the_next_colour_swaps_ports_and_starts_small() {
        let blue = prepare(
            user_app(),
            None,
            Sizing {
                initial: 1,
                new_instances: 0,
            },
        );
        let live = Deployed::from_json(blue).unwrap();
        let green = prepare(
            user_app(),
            Some(&live),
            Sizing {
                initial: 1,
                new_instances: 0,
            },
        );
        assert_eq!(green["id"], "/web-green");
        assert_eq!(green["instances"], 1);
        assert_eq!(service_port(&green), Some(10001), "the alternate port");
        assert_eq!(
            green["labels"][PORT_0], "10000",
            "the balancer keeps serving 10000"
        );
        assert_eq!(green["labels"][TARGET_INSTANCES], "4");
        // And back, once green runs all 4: blue again on the original port.
        let mut green = green;
        green["instances"] = 4.into();
        let live = Deployed::from_json(green).unwrap();
        let blue = prepare(
            user_app(),
            Some(&live),
            Sizing {
                initial: 9,
                new_instances: 2,
            },
        );
        assert_eq!(blue["id"], "/web-blue");
        assert_eq!(service_port(&blue), Some(10000));
        assert_eq!(
            blue["instances"], 2,
            "--initial-instances capped at --new-instances"
        );
        assert_eq!(blue["labels"][NEW_INSTANCES], "2");
    }

    #[test]
    fn missing_labels_are_named() {
        let mut app = user_app();
        app["labels"].as_object_mut().unwrap().remove(ALT_PORT);
        let err = validate(&app).unwrap_err().to_string();
        assert!(err.contains(ALT_PORT), "{err}");
        assert_eq!(validate(&user_app()).unwrap(), "/web");
    }
}

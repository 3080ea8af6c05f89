//! `switchyard zdd` against the demo: Tweeter is a deployment group (`HAPROXY_DEPLOYMENT_GROUP`
//! `tweeter`), the simulator launches backends for the apps `zdd` posts, and the demo writes
//! the next version's definition and prints the one command that deploys it blue/green.

use std::path::PathBuf;

use serde_json::{json, Value};

/// Tweeter's deployment-group labels: on the demo's service port, with the next port as the
/// alternate one Marathon needs while both colours run.
pub fn label(app: &mut Value, service_port: u16) {
    let alt = service_port
        .checked_add(1)
        .unwrap_or(service_port.saturating_sub(1));
    app["labels"]["HAPROXY_DEPLOYMENT_GROUP"] = json!("tweeter");
    app["labels"]["HAPROXY_DEPLOYMENT_ALT_PORT"] = json!(alt.to_string());
}

/// Writes Tweeter's next version (as a user would edit it) to a file of its own: its path.
pub fn write_next_version(mut app: Value) -> std::io::Result<PathBuf> {
    app["env"] = json!({"DEMO_VERSION": "2"});
    if let Some(app) = app.as_object_mut() {
        app.remove("instances");
    }
    app["instances"] = json!(3);
    let dir = std::env::temp_dir().join(format!("switchyard-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("tweeter-v2.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&app).unwrap_or_default())?;
    Ok(path)
}

/// The command that deploys it (the binary running now: not on the PATH after `cargo run`),
/// a step a second.
pub fn command(exe: &str, file: &std::path::Path, marathon: &str, admin: &str) -> String {
    format!(
        "{exe} zdd -j {} -m {marathon} -l http://{admin} -f -s 1",
        file.display()
    )
}

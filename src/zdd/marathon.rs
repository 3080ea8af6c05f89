//! The Marathon calls a deployment makes (`zdd.py`'s): list the group, read an app, create,
//! scale, kill tasks with `scale=true`, delete. Each failure names the call and Marathon's
//! message, and maps to `zdd.py`'s exit status for it.

use reqwest::Method;
use serde_json::{json, Value};

use crate::marathon::MarathonClient;

use super::deployed::Deployed;
use super::ZddError;

/// The apps of `group` (a leading `/`), oldest deployment first.
pub async fn group_apps(client: &MarathonClient, group: &str) -> Result<Vec<Deployed>, ZddError> {
    let answer = get(client, "/v2/apps", "embed=apps.tasks").await?;
    let apps = answer["apps"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for app in apps {
        let id = app["id"].as_str().unwrap_or("?").to_owned();
        let deployed = Deployed::from_json(app)
            .map_err(|e| ZddError::Marathon(format!("cannot read app {id}: {e}")))?;
        if deployed.group.as_deref() == Some(group) {
            out.push(deployed);
        }
    }
    out.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
    Ok(out)
}

/// One app with its tasks.
pub async fn app(client: &MarathonClient, id: &str) -> Result<Deployed, ZddError> {
    let path = format!("/v2/apps/{}", id.trim_start_matches('/'));
    let answer = get(client, &path, "embed=app.tasks").await?;
    Deployed::from_json(answer["app"].clone())
        .map_err(|e| ZddError::Marathon(format!("cannot read app {id}: {e}")))
}

pub async fn create(client: &MarathonClient, app: &Value) -> Result<(), ZddError> {
    write(client, Method::POST, "/v2/apps", "", Some(app))
        .await
        .map_err(ZddError::Create)
}

pub async fn scale(client: &MarathonClient, id: &str, instances: u32) -> Result<(), ZddError> {
    let path = format!("/v2/apps/{}", id.trim_start_matches('/'));
    let body = json!({ "instances": instances });
    write(client, Method::PUT, &path, "", Some(&body))
        .await
        .map_err(ZddError::Scale)
}

/// Kills tasks and scales their app down by as many (`/v2/tasks/delete?scale=true`).
pub async fn kill(client: &MarathonClient, task_ids: &[String]) -> Result<(), ZddError> {
    let body = json!({ "ids": task_ids });
    write(
        client,
        Method::POST,
        "/v2/tasks/delete",
        "scale=true",
        Some(&body),
    )
    .await
    .map_err(ZddError::Scale)
}

pub async fn delete(client: &MarathonClient, id: &str) -> Result<(), ZddError> {
    let path = format!("/v2/apps/{}", id.trim_start_matches('/'));
    write(client, Method::DELETE, &path, "", None)
        .await
        .map_err(ZddError::Delete)
}

async fn get(client: &MarathonClient, path: &str, query: &str) -> Result<Value, ZddError> {
    let answer = client
        .call(Method::GET, path, query, None)
        .await
        .map_err(|e| ZddError::Marathon(e.to_string()))?;
    if !answer.status.is_success() {
        return Err(ZddError::Marathon(format!(
            "GET {path} answered {}: {}",
            answer.status,
            answer.message()
        )));
    }
    serde_json::from_slice(&answer.body)
        .map_err(|e| ZddError::Marathon(format!("GET {path}: not JSON: {e}")))
}

/// A write; `Err` carries a message naming the call.
async fn write(
    client: &MarathonClient,
    method: Method,
    path: &str,
    query: &str,
    body: Option<&Value>,
) -> Result<(), String> {
    let call = format!("{method} {path}");
    let answer = client
        .call(method, path, query, body)
        .await
        .map_err(|e| format!("{call}: {e}"))?;
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "{call} answered {}: {}",
            answer.status,
            answer.message()
        ))
    }
}

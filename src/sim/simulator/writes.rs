//! Marathon's write endpoints, as `zdd.py` and `switchyard zdd` use them: `POST /v2/apps`,
//! `PUT` and `DELETE /v2/apps/{id}`, `POST /v2/tasks/delete[?scale=true]`, and the
//! `GET /v2/deployments` list. Each change is applied and its events published under the
//! state lock (as the setters do), then the scheduler is woken.

use serde_json::{json, Value};

use super::h1::{self, Request, Response};
use super::node::lock;
use super::state::{Apps, Emit, Refused};
use super::Shared;

impl super::Simulator {
    /// Changes made through the write API so far (`POST`, `PUT`, `DELETE`, task kills).
    pub fn api_writes(&self) -> u64 {
        let writes = &self.shared.counters.api_writes;
        writes.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The answer to a write (or `/v2/deployments`), or `None` for a request this is not for.
pub(super) fn answer(shared: &Shared, request: &Request) -> Option<Response> {
    let path = request.path.as_str();
    let method = request.method.as_str();
    let app_id = path
        .strip_prefix("/v2/apps/")
        .filter(|id| !id.is_empty() && !id.contains("/tasks"));
    let response = match (method, path, app_id) {
        ("GET", "/v2/deployments", _) => {
            Response::json(200, &lock(&shared.apps).deployments_json())
        }
        ("POST", "/v2/apps", _) => match body(request) {
            Ok(definition) => match change(shared, |apps| apps.create(definition)) {
                Ok(app) => Response::json(201, &app),
                Err(Refused(status, message)) => Response::message(status, &message),
            },
            Err(response) => response,
        },
        ("PUT", _, Some(id)) => match body(request) {
            Ok(patch) => match change(shared, |apps| {
                apps.update(id, patch)
                    .map(|(deployment, created, events)| ((deployment, created), events))
            }) {
                Ok((deployment, created)) => Response::json(
                    if created { 201 } else { 200 },
                    &json!({ "deploymentId": deployment, "version": super::state::now_iso() }),
                ),
                Err(Refused(status, message)) => Response::message(status, &message),
            },
            Err(response) => response,
        },
        ("DELETE", _, Some(id)) => {
            let deleted = change(shared, |apps| {
                apps.delete(id)
                    .map(|(deployment, ended, events)| ((deployment, ended), events))
                    .ok_or(())
            });
            match deleted {
                Ok((deployment, ended)) => {
                    stop(shared, &ended);
                    Response::json(
                        200,
                        &json!({ "deploymentId": deployment, "version": super::state::now_iso() }),
                    )
                }
                Err(()) => Response::message(404, &format!("App '/{id}' does not exist")),
            }
        }
        ("POST", "/v2/tasks/delete", _) => match body(request) {
            Ok(document) => {
                let ids: Vec<String> = document["ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|id| id.as_str().map(str::to_owned))
                    .collect();
                let scale = h1::query_pairs(request.query.as_deref())
                    .any(|(key, value)| key == "scale" && value == "true");
                let killed = change(shared, |apps| {
                    let (ended, events) = apps.kill_tasks(&ids, scale);
                    Ok::<_, ()>((ended, events))
                });
                let ended = killed.unwrap_or_default();
                stop(shared, &ended);
                if scale {
                    Response::json(
                        200,
                        &json!({ "deploymentId": super::state::uuid(), "version": super::state::now_iso() }),
                    )
                } else {
                    Response::json(200, &json!({ "tasks": [] }))
                }
            }
            Err(response) => response,
        },
        _ => return None,
    };
    if method != "GET" {
        shared
            .counters
            .api_writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    if let Some(scheduler) = shared.scheduler.get() {
        scheduler.wake.notify_one();
    }
    Some(response)
}

/// Applies a change and publishes its events while the state is still locked.
fn change<T, E>(
    shared: &Shared,
    f: impl FnOnce(&mut Apps) -> Result<(T, Vec<Emit>), E>,
) -> Result<T, E> {
    let mut apps = lock(&shared.apps);
    let (value, events) = f(&mut apps)?;
    for emit in events {
        shared.bus.publish(emit.kind, emit.data);
    }
    Ok(value)
}

fn stop(shared: &Shared, ended: &[super::state::Ended]) {
    if let Some(scheduler) = shared.scheduler.get() {
        scheduler.stop_all(ended);
    }
}

fn body(request: &Request) -> Result<Value, Response> {
    serde_json::from_slice(&request.body)
        .map_err(|e| Response::message(400, &format!("Invalid JSON: {e}")))
}

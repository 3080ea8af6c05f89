//! The write API: creates, scales, kills and deletes, the deployments they start, and the
//! scheduler launching (and health-checking) tasks through a launcher.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::sim::demo::DemoLauncher;
use crate::sim::simulator::{Launcher, SimAuth};

/// Waits until `/v2/apps/{id}` satisfies `done` (at most `GUARD`).
async fn wait_app(url: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let wait = async {
        loop {
            let app: Value = client()
                .get(format!("{url}/v2/apps{id}?embed=app.tasks"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if done(&app["app"]) {
                return app["app"].clone();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(GUARD, wait)
        .await
        .expect("the app got there")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_launch_scale_kill_and_delete_tasks() {
    let sim = start(1, SimAuth::None).await;
    let launcher = DemoLauncher::new();
    let tasks: Arc<dyn Launcher> = Arc::new(launcher.clone());
    sim.run_tasks(tasks, Duration::from_millis(20));
    let url = &sim.urls()[0];
    let app = json!({"id": "/web", "instances": 2, "portDefinitions": [{"port": 10500}],
                     "healthChecks": [{"protocol": "HTTP", "path": "/"}]});
    let created = client()
        .post(format!("{url}/v2/apps"))
        .json(&app)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let again = client()
        .post(format!("{url}/v2/apps"))
        .json(&app)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "one id, one app");
    let clash = json!({"id": "/other", "portDefinitions": [{"port": 10500}]});
    let clash = client()
        .post(format!("{url}/v2/apps"))
        .json(&clash)
        .send()
        .await
        .unwrap();
    assert_eq!(clash.status(), 422, "a service port in use");

    // Running and healthy: the deployment ends.
    let web = wait_app(url, "/web", |a| {
        a["deployments"] == json!([]) && a["tasksHealthy"] == 2
    })
    .await;
    assert_eq!(web["tasks"].as_array().unwrap().len(), 2);
    let scaled = client()
        .put(format!("{url}/v2/apps/web"))
        .json(&json!({"instances": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(scaled.status(), 200);
    let web = wait_app(url, "/web", |a| a["tasksHealthy"] == 3).await;
    let first = web["tasks"][0]["id"].as_str().unwrap().to_owned();
    let killed = client()
        .post(format!("{url}/v2/tasks/delete?scale=true"))
        .json(&json!({"ids": [first]}))
        .send()
        .await
        .unwrap();
    assert_eq!(killed.status(), 200);
    let web = wait_app(url, "/web", |a| a["instances"] == 2).await;
    assert_eq!(
        web["tasks"].as_array().unwrap().len(),
        2,
        "not replaced: scaled down"
    );
    let deleted = client()
        .delete(format!("{url}/v2/apps/web"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(sim.apps_json()["apps"], json!([]));
    assert_eq!(sim.api_writes(), 6);
    sim.shutdown().await;
    launcher.stop_all();
}

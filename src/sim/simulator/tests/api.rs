//! `/v2/apps` and friends: the document's shape, embeds, gzip, faults, bookkeeping.

use std::io::Read as _;

use super::*;
use crate::sim::simulator::{AppsFault, SimAuth, TaskSpec};

async fn get_json(url: &str) -> (u16, Value) {
    let response = client().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn apps_document_has_marathons_shape() {
    let sim = start(1, SimAuth::None).await;
    let url = &sim.urls()[0];
    sim.put_app(serde_json::json!({"id": "/zeta", "cmd": "sleep 1"}));
    sim.put_app(web_app("/shop/web"));
    let healthy = sim
        .start_task("/shop/web", TaskSpec::running("10.0.0.1", vec![31000]))
        .unwrap();
    let quiet = sim
        .start_task("/shop/web", TaskSpec::running("agent-2", vec![31001]))
        .unwrap();
    assert!(sim.set_task_health(&healthy, true));
    assert!(sim
        .start_task("/nope", TaskSpec::running("h", vec![]))
        .is_none());

    let response = client()
        .get(format!("{url}/v2/apps?embed=apps.tasks"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let apps: Value = response.json().await.unwrap();
    assert_eq!(apps, sim.apps_json());
    let ids: Vec<_> = apps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert_eq!(ids, ["/shop/web", "/zeta"]);
    let web = &apps["apps"][0];
    assert_eq!(web["labels"]["HAPROXY_0_VHOST"], "web.example.org");
    assert_eq!(web["instances"], 1);
    assert_eq!(web["deployments"], serde_json::json!([]));
    let version = web["version"].as_str().unwrap();
    assert!(version.len() == 24 && version.ends_with('Z'), "{version}");
    let counts = [
        "tasksRunning",
        "tasksHealthy",
        "tasksUnhealthy",
        "tasksStaged",
    ]
    .map(|k| &web[k]);
    assert_eq!(counts, [2, 1, 0, 0]);

    let task = &web["tasks"][0];
    assert_eq!(task["id"], healthy.as_str());
    assert!(healthy.starts_with("shop_web.instance-") && healthy.ends_with("._app.1"));
    let instance = healthy.trim_end_matches("._app.1");
    assert_eq!(task["appId"], "/shop/web");
    assert_eq!(task["host"], "10.0.0.1");
    assert_eq!(task["ports"], serde_json::json!([31000]));
    assert_eq!(
        task["ipAddresses"],
        serde_json::json!([{"ipAddress": "10.0.0.1", "protocol": "IPv4"}])
    );
    assert_eq!(task["state"], "TASK_RUNNING");
    assert_eq!(task["version"], version);
    for key in ["startedAt", "stagedAt", "slaveId"] {
        assert!(task[key].is_string(), "{key}");
    }
    let result = &task["healthCheckResults"][0];
    assert_eq!(result["alive"], true);
    assert_eq!(result["instanceId"], instance);
    assert_eq!(result["lastFailure"], Value::Null);
    let other = &web["tasks"][1];
    assert_eq!(other["id"], quiet.as_str());
    assert!(other.get("healthCheckResults").is_none());
    assert_eq!(other["ipAddresses"], serde_json::json!([]));

    // Without embed there are no tasks; `app.` and repeated embeds are accepted.
    let (_, plain) = get_json(&format!("{url}/v2/apps")).await;
    assert!(plain["apps"][0].get("tasks").is_none());
    let (_, other_prefix) =
        get_json(&format!("{url}/v2/apps?embed=apps.counts&embed=app.tasks")).await;
    assert_eq!(other_prefix["apps"][0]["tasks"][1]["id"], quiet.as_str());
    let (_, one) = get_json(&format!("{url}/v2/apps/shop/web?embed=app.tasks")).await;
    assert_eq!(one["app"]["tasks"][0]["id"], healthy.as_str());
    assert_eq!(sim.stats().apps_requests, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn changes_bump_versions_and_keep_tasks() {
    let sim = start(1, SimAuth::None).await;
    sim.put_app(web_app("web"));
    let task = sim
        .start_task("/web", TaskSpec::running("10.0.0.1", vec![1]))
        .unwrap();
    let first = sim.apps_json()["apps"][0].clone();
    let mut scaled = web_app("/web");
    scaled["instances"] = 3.into();
    sim.put_app(scaled);
    let second = sim.apps_json()["apps"][0].clone();
    assert!(second["version"].as_str() > first["version"].as_str());
    assert_eq!(second["instances"], 3);
    assert_eq!(second["versionInfo"]["lastScalingAt"], second["version"]);
    assert_eq!(
        second["versionInfo"]["lastConfigChangeAt"],
        first["versionInfo"]["lastConfigChangeAt"]
    );
    assert_eq!(second["tasks"][0]["id"], task.as_str());
    assert!(sim.set_task_health(&task, false));
    let third = sim.apps_json()["apps"][0].clone();
    assert_eq!(third["tasksUnhealthy"], 1);
    assert_eq!(third["tasks"][0]["healthCheckResults"][0]["alive"], false);
    assert!(sim.set_task_state(&task, "TASK_UNREACHABLE"));
    assert!(sim.kill_task(&task));
    assert!(!sim.kill_task(&task));
    assert_eq!(sim.apps_json()["apps"][0]["tasks"], serde_json::json!([]));
    assert!(sim.remove_app("/web/"));
    assert!(!sim.remove_app("/web"));
    assert_eq!(sim.apps_json(), serde_json::json!({"apps": []}));
    sim.shutdown().await;
}

#[tokio::test]
async fn apps_are_gzipped_on_request() {
    let sim = start(1, SimAuth::None).await;
    sim.put_app(web_app("/web"));
    let response = client()
        .get(format!("{}/v2/apps?embed=apps.tasks", sim.urls()[0]))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let compressed = response.bytes().await.unwrap();
    let mut json = String::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .read_to_string(&mut json)
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&json).unwrap(),
        sim.apps_json()
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn apps_faults() {
    let sim = start(1, SimAuth::None).await;
    let url = format!("{}/v2/apps?embed=apps.tasks", sim.urls()[0]);
    sim.put_app(web_app("/web"));

    sim.set_apps_fault(AppsFault::Status(502));
    let (status, body) = get_json(&url).await;
    assert_eq!((status, body["message"].is_string()), (502, true));

    sim.set_apps_fault(AppsFault::Garbage);
    let text = client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "{\"apps\": [ {");

    sim.set_apps_fault(AppsFault::WrongTyped);
    assert_eq!(
        get_json(&url).await.1,
        serde_json::json!({"apps": {"x": 1}})
    );

    sim.set_apps_fault(AppsFault::Truncated);
    let head = "GET /v2/apps?embed=apps.tasks HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut raw = Raw::request(&sim.urls()[0], head).await;
    let (status, head) = raw.status().await;
    assert_eq!(status, 200);
    let announced: usize = header(&head, "content-length").unwrap().parse().unwrap();
    let body = raw.read_to_close().await;
    assert!(!body.is_empty() && body.len() < announced);
    assert!(sim.apps_json().to_string().as_bytes().starts_with(&body));
    assert!(client()
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .is_err());

    sim.set_apps_fault(AppsFault::None);
    assert_eq!(get_json(&url).await.1, sim.apps_json());
    sim.shutdown().await;
}

#[tokio::test]
async fn info_leader_ping_and_unknown_paths() {
    let sim = start(2, SimAuth::None).await;
    let urls = sim.urls();
    let (_, info) = get_json(&format!("{}/v2/info", urls[1])).await;
    assert_eq!(info["name"], "marathon");
    assert_eq!(info["elected"], false);
    assert_eq!(info["leader"], authority(&urls[0]));
    let (status, leader) = get_json(&format!("{}/v2/leader", urls[1])).await;
    assert_eq!(
        (status, &leader["leader"]),
        (200, &Value::from(authority(&urls[0])))
    );
    let pong = client()
        .get(format!("{}/ping", urls[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(pong.text().await.unwrap(), "pong");
    let (status, missing) = get_json(&format!("{}/v2/nothing", urls[0])).await;
    assert_eq!(status, 404);
    assert!(missing["message"].is_string());
    let (status, _) = get_json(&format!("{}/elsewhere", urls[0])).await;
    assert_eq!(status, 404);
    sim.shutdown().await;
}

#[tokio::test]
async fn remembers_request_headers_and_queries() {
    let sim = start(1, SimAuth::None).await;
    let url = &sim.urls()[0];
    client()
        .get(format!("{url}/v2/apps?embed=apps.tasks"))
        .header("Accept", "application/json")
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    client().get(format!("{url}/v2/info")).send().await.unwrap();
    let headers = sim.last_headers("/v2/apps").unwrap();
    assert_eq!(headers["accept"], "application/json");
    assert_eq!(headers["accept-encoding"], "gzip");
    assert_eq!(
        sim.last_query("/v2/apps").as_deref(),
        Some("embed=apps.tasks")
    );
    assert_eq!(sim.last_query("/v2/info"), None);
    assert!(sim
        .last_headers("/v2")
        .unwrap()
        .get("accept-encoding")
        .is_none());
    assert!(sim.last_headers("/v2/events").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let sim = start(1, SimAuth::None).await;
    let head = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut raw = Raw::request(&sim.urls()[0], &head.repeat(2)).await;
    for _ in 0..2 {
        let (status, _) = raw.status().await;
        assert_eq!(status, 200);
        assert_eq!(raw.take(4).await, b"pong");
    }
    let (status, _) = {
        let bad = "GET /ping HTTP/1.1\r\nContent-Length: nope\r\n\r\n";
        tokio::io::AsyncWriteExt::write_all(&mut raw.stream, bad.as_bytes())
            .await
            .unwrap();
        raw.status().await
    };
    assert_eq!(status, 400);
    raw.read_to_close().await;
    sim.shutdown().await;
}

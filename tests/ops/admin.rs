//! The admin port: Marathon-LB's endpoints, ours, and `/metrics` read by a Prometheus parser
//! with counters moving as traffic flows.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::proxy::*;
use support::scrape::{parse, value};
use switchyard::marathon::MarathonConfig;
use switchyard::proxy::ProxyConfig;
use switchyard::serve::{MarathonSource, Source};

async fn admin_get(handle: &switchyard::serve::Handle, path: &str) -> (u16, String) {
    let url = format!("http://{}{path}", handle.admin_addr);
    let response = client().get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn metrics(text: &str) -> Vec<prometheus_parse::Sample> {
    parse(text).samples
}

fn apps(port: u16) -> Value {
    json!([
        app(
            "/shop/web",
            10810,
            json!({"HAPROXY_0_VHOST": "shop.example.com"}),
            &[port]
        ),
        app(
            "/api",
            10811,
            json!({"HAPROXY_0_VHOST": "api.example.com", "HAPROXY_0_BALANCE": "fastest"}),
            &[port]
        ),
    ])
}

#[tokio::test]
async fn marathon_lb_endpoints_answer_as_it_did() {
    let web = Backend::start("web").await;
    let proxy = Proxy::start(apps(web.port())).await;
    let handle = &proxy.handle;

    assert_eq!(admin_get(handle, "/_haproxy_health_check").await.0, 200);
    assert_eq!(admin_get(handle, "/healthz").await.0, 200);
    assert_eq!(admin_get(handle, "/readyz").await.0, 200);
    let (_, vhosts) = admin_get(handle, "/_haproxy_getvhostmap").await;
    assert_eq!(vhosts, "shop.example.com shop_web_10810\n");
    let (_, apps_map) = admin_get(handle, "/_haproxy_getappmap").await;
    assert_eq!(apps_map, "/shop/web shop_web_10810\n");
    let (_, config) = admin_get(handle, "/_haproxy_getconfig").await;
    assert!(
        config.contains("shop.example.com") && config.contains("invalid_label"),
        "{config}"
    );
    let (_, routes) = admin_get(handle, "/routes").await;
    let routes: Value = serde_json::from_str(&routes).unwrap();
    assert_eq!(routes["generation"], 1);
    assert!(routes["problems"].to_string().contains("fastest"));

    // The signal endpoints: HUP reads the source again, USR1 rebuilds from the last read.
    let refreshes = handle.refreshes();
    assert_eq!(admin_get(handle, "/_mlb_signal/hup").await.0, 200);
    handle.wait_refreshes(refreshes + 1).await;
    let generation = handle.generation();
    assert_eq!(admin_get(handle, "/_mlb_signal/usr1").await.0, 200);
    handle.wait_generation(generation + 1).await;

    let (_, stats) = admin_get(handle, "/stats").await;
    let stats: Value = serde_json::from_str(&stats).unwrap();
    let backend = &stats["backends"][0];
    assert_eq!(backend["name"], "shop_web_10810");
    assert_eq!(
        backend["endpoints"][0]["addr"],
        format!("127.0.0.1:{}", web.port())
    );
    assert_eq!(admin_get(handle, "/nope").await.0, 404);

    // HAProxy's stats page leads to the status page; its CSV says where the figures are.
    let url = format!("http://{}/haproxy?stats", handle.admin_addr);
    let response = client().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "/");
    let (status, csv) = admin_get(handle, "/haproxy?stats;csv").await;
    assert_eq!(status, 404);
    assert!(csv.contains("/stats"), "{csv}");
}

#[tokio::test]
async fn stats_and_history_show_what_happened_before_anyone_looked() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let service_port = free_port();
    let shop = |ports: &[u16]| {
        app(
            "/shop",
            service_port,
            json!({"HAPROXY_0_VHOST": "shop.example.com"}),
            ports,
        )
    };
    let proxy = Proxy::start(json!([shop(&[a.port()])])).await;
    let handle = &proxy.handle;
    for _ in 0..4 {
        let status = get(&client(), &proxy.url("/"), "shop.example.com").await.0;
        assert_eq!(status, 200);
    }
    let api = app(
        "/api",
        free_port(),
        json!({"HAPROXY_0_VHOST": "api.example.com"}),
        &[b.port()],
    );
    proxy.set_apps(json!([shop(&[b.port()]), api])).await;
    let generation = handle.generation();

    // The process, and every generation with what it changed, whenever /stats is read.
    // The recorder is a task of its own: it may not have looked at the last table yet.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let (_, stats) = admin_get(handle, "/stats").await;
        let stats: Value = serde_json::from_str(&stats).unwrap();
        if stats["generations"][0]["generation"] == generation {
            break stats;
        }
        assert!(std::time::Instant::now() < deadline, "{stats}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(stats["version"], env!("CARGO_PKG_VERSION"));
    assert!(stats["uptime_seconds"].is_u64(), "{stats}");
    assert!(stats["started_unix_ms"].as_u64().unwrap() > 0);
    let last = &stats["generations"][0];
    assert_eq!(last["apps_added"], json!({"count": 1, "first": ["/api"]}));
    assert_eq!(
        last["apps_changed"],
        json!({"count": 1, "first": ["/shop"]})
    );
    assert_eq!(last["apps_removed"]["count"], 0);
    assert_eq!(
        (&last["endpoints_added"], &last["endpoints_removed"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(
        (&last["backends"], &last["endpoints"]),
        (&json!(2), &json!(2))
    );
    let first = stats["generations"].as_array().unwrap().last().unwrap();
    assert_eq!(first["generation"], 1);
    assert_eq!(first["apps_added"]["first"], json!(["/shop"]));

    // The traffic the balancer counted before /history was first read: the shop's four
    // requests, in its series and in the total.
    let (status, history) = admin_get(handle, "/history").await;
    assert_eq!(status, 200, "{history}");
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history["interval_ms"], 5000);
    assert_eq!(history["last_partial"], true);
    let series = history["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["app_id"] == "/shop")
        .unwrap_or_else(|| panic!("no series for /shop: {history}"));
    assert_eq!(series["window_requests"], 4, "{history}");
    assert_eq!(series["window_errors_5xx"], 0);
    let times = history["times"].as_array().unwrap().len();
    assert!(series["requests"].as_array().unwrap().len() <= times);
    assert!(
        series["p99_ms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p.is_f64()),
        "{series}"
    );
    assert_eq!(history["total"]["window_requests"], 4);
}

#[tokio::test]
async fn readyz_waits_for_a_first_table() {
    let config = MarathonConfig {
        urls: vec![format!("http://127.0.0.1:{}", closed_port())],
        ..MarathonConfig::default()
    };
    let source = Source::Marathon(MarathonSource::new(config));
    let handle = start_on_loopback(source, Duration::from_secs(3600), ProxyConfig::default()).await;
    handle.wait_refreshes(1).await;
    let (status, body) = admin_get(&handle, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(admin_get(&handle, "/_haproxy_health_check").await.0, 200);
    handle.shutdown().await;
}

#[tokio::test]
async fn metrics_parse_and_move_with_traffic() {
    let web = Backend::start("web").await;
    let proxy = Proxy::start(apps(web.port())).await;
    let handle = &proxy.handle;
    let c = client();
    let url = proxy.url("/");
    for _ in 0..3 {
        assert_eq!(get(&c, &url, "shop.example.com").await.0, 200);
    }
    assert_eq!(get(&c, &url, "nobody.example.com").await.0, 503);
    let posted = c
        .post(&url)
        .header("host", "shop.example.com")
        .body(vec![7u8; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);

    let (status, text) = admin_get(handle, "/metrics").await;
    assert_eq!(status, 200);
    let samples = metrics(&text);
    let shop = [
        ("listener", "http"),
        ("backend", "shop_web_10810"),
        ("class", "2xx"),
    ];
    assert_eq!(value(&samples, "switchyard_requests_total", &shop), 4.0);
    let shop_backend = [("backend", "shop_web_10810")];
    assert_eq!(
        value(&samples, "switchyard_request_bytes_total", &shop_backend),
        1000.0
    );
    let unrouted = [
        ("listener", "http"),
        ("backend", "unrouted"),
        ("class", "5xx"),
    ];
    assert_eq!(value(&samples, "switchyard_requests_total", &unrouted), 1.0);
    assert_eq!(
        value(
            &samples,
            "switchyard_request_duration_seconds_count",
            &[("backend", "shop_web_10810")]
        ),
        4.0
    );
    assert!(
        value(
            &samples,
            "switchyard_response_bytes_total",
            &[("backend", "shop_web_10810")]
        ) > 0.0
    );
    assert_eq!(
        value(&samples, "switchyard_routing_table_generation", &[]),
        1.0
    );
    assert_eq!(value(&samples, "switchyard_backends", &[]), 1.0);
    assert_eq!(
        value(&samples, "switchyard_endpoints", &[("state", "up")]),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "switchyard_problems",
            &[("kind", "invalid_label")]
        ),
        1.0
    );
    assert!(value(&samples, "switchyard_connections", &[("listener", "http")]) >= 1.0);
    assert!(value(&samples, "switchyard_last_sync_timestamp_seconds", &[]) > 1.7e9);

    // More traffic moves the counter; a connect failure counts as one (and a retry).
    for _ in 0..2 {
        get(&c, &url, "shop.example.com").await;
    }
    let samples = metrics(&admin_get(handle, "/metrics").await.1);
    assert_eq!(value(&samples, "switchyard_requests_total", &shop), 6.0);
    drop(web);
    let dead = closed_port();
    proxy
        .set_apps(json!([app(
            "/shop/web",
            10810,
            json!({"HAPROXY_0_VHOST": "shop.example.com"}),
            &[dead]
        )]))
        .await;
    assert_eq!(get(&c, &url, "shop.example.com").await.0, 502);
    let samples = metrics(&admin_get(handle, "/metrics").await.1);
    assert!(
        value(
            &samples,
            "switchyard_upstream_connect_errors_total",
            &[("backend", "shop_web_10810")]
        ) >= 1.0
    );
    let failed = [
        ("listener", "http"),
        ("backend", "shop_web_10810"),
        ("class", "5xx"),
    ];
    assert_eq!(value(&samples, "switchyard_requests_total", &failed), 1.0);
}

#[tokio::test]
async fn stats_lists_the_hosts_that_found_no_route_most_recent_first() {
    let backend = Backend::start("shop").await;
    let proxy = Proxy::start(apps(backend.port())).await;
    let c = client();
    let url = proxy.url("/");
    assert_eq!(get(&c, &url, "shop.example.com").await.0, 200);
    let long = format!("{}.example.com", "a".repeat(300));
    for host in [
        "Typo.Example.com:8080",
        "typo.example.com",
        "it's(odd)!.example.com",
        &long,
    ] {
        assert_eq!(get(&c, &url, host).await.0, 503, "{host}");
    }

    let (status, text) = admin_get(&proxy.handle, "/stats").await;
    assert_eq!(status, 200);
    let stats: Value = serde_json::from_str(&text).unwrap();
    let unrouted = stats["unrouted"].as_array().expect("an unrouted list");
    let hosts: Vec<(&str, u64)> = unrouted
        .iter()
        .map(|h| (h["host"].as_str().unwrap(), h["requests"].as_u64().unwrap()))
        .collect();
    let cut = format!("{}...", "a".repeat(100));
    assert_eq!(
        hosts,
        [
            (cut.as_str(), 1),
            ("it?s?odd??.example.com", 1),
            ("typo.example.com", 2)
        ]
    );
    for host in unrouted {
        assert_eq!(host["listener"], "http");
        let seen = host["last_seen"].as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(seen).unwrap_or_else(|e| panic!("{seen}: {e}"));
        assert!(seen.ends_with('Z') && seen.len() == 20, "{seen}");
        assert_eq!(host.as_object().unwrap().len(), 4, "{host}");
    }

    // Each listener its own entry: on 9091 (routed by app id) the host is listed too.
    let app_id_url = format!("http://{}/", proxy.handle.app_id_addr);
    let request = c
        .get(&app_id_url)
        .header("host", "typo.example.com")
        .header("x-marathon-app-id", "/no/such/app");
    assert_eq!(send(request).await.0, 503);
    let (_, text) = admin_get(&proxy.handle, "/stats").await;
    let stats: Value = serde_json::from_str(&text).unwrap();
    let newest = &stats["unrouted"][0];
    assert_eq!(newest["listener"], "app_id");
    assert_eq!(
        (newest["host"].as_str(), newest["requests"].as_u64()),
        (Some("typo.example.com"), Some(1))
    );

    // Many made-up hosts: the list stays at 50, the newest first.
    for n in 0..80 {
        assert_eq!(get(&c, &url, &format!("h{n}.example.com")).await.0, 503);
    }
    let (_, text) = admin_get(&proxy.handle, "/stats").await;
    let stats: Value = serde_json::from_str(&text).unwrap();
    let unrouted = stats["unrouted"].as_array().unwrap();
    assert_eq!(unrouted.len(), 50);
    assert_eq!(unrouted[0]["host"], "h79.example.com");
}

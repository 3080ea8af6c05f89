//! Balancing through the proxy: the policies, draining endpoints, sticky sessions, and an
//! endpoint failing its active health check taken out of rotation.

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::proxy::*;

#[tokio::test]
async fn balancing_policies_draining_and_sticky_sessions() {
    let (a, b, c) = (
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
    );
    let proxy = Proxy::start(json!([app(
        "/rr",
        free_port(),
        json!({"HAPROXY_0_VHOST": "rr.example.com"}),
        &[a.port(), b.port(), c.port()]
    )]))
    .await;
    let http = client();
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(get(&http, &proxy.url("/"), "rr.example.com").await.1);
    }
    seen.sort();
    assert_eq!(
        seen,
        ["a", "a", "b", "b", "c", "c"],
        "round-robin spreads evenly"
    );

    // Sticky: the cookie set on the first response pins the next requests.
    proxy
        .set_apps(json!([app(
            "/st",
            free_port(),
            json!({"HAPROXY_0_VHOST": "st.example.com", "HAPROXY_0_STICKY": "true"}),
            &[a.port(), b.port(), c.port()]
        )]))
        .await;
    let first = http
        .get(proxy.url("/"))
        .header("host", "st.example.com")
        .send()
        .await
        .unwrap();
    let cookie = first.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("mesosphere_server_id="), "{cookie}");
    let pinned = first.headers()["x-backend"].to_str().unwrap().to_owned();
    for _ in 0..5 {
        let r = http
            .get(proxy.url("/"))
            .header("host", "st.example.com")
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-backend"], pinned.as_str());
        assert!(r.headers().get("set-cookie").is_none(), "already pinned");
    }

    // Source hash: one client address always lands on the same endpoint.
    proxy
        .set_apps(json!([app(
            "/src",
            free_port(),
            json!({"HAPROXY_0_VHOST": "src.example.com", "HAPROXY_0_BALANCE": "source"}),
            &[a.port(), b.port(), c.port()]
        )]))
        .await;
    let first = get(&http, &proxy.url("/"), "src.example.com").await.1;
    for _ in 0..5 {
        assert_eq!(
            get(&fresh_client(), &proxy.url("/"), "src.example.com")
                .await
                .1,
            first
        );
    }
}

#[tokio::test]
async fn an_endpoint_failing_its_active_health_check_leaves_rotation() {
    let (sick, well) = (Backend::start("sick").await, Backend::start("well").await);
    let mut checked = app(
        "/checked",
        free_port(),
        json!({"HAPROXY_0_VHOST": "hc.example.com"}),
        &[sick.port(), well.port()],
    );
    // Marathon still reports both tasks healthy; the balancer's own check disagrees for one.
    checked["healthChecks"] = json!([{"protocol": "HTTP", "path": "/health", "portIndex": 0,
        "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 0}]);
    for task in checked["tasks"].as_array_mut().unwrap() {
        task["healthCheckResults"] = json!([{"alive": true}]);
    }
    let proxy = Proxy::start(json!([checked])).await;
    let sick_state = {
        let table = proxy.handle.table.load();
        let backend = &table.backends()[0];
        let i = backend
            .targets
            .iter()
            .position(|t| t.addr() == sick.addr)
            .unwrap();
        backend.targets[i].state.clone()
    };
    // Wait on the endpoint's observable state (the first probe runs at once).
    tokio::time::timeout(Duration::from_secs(10), async {
        while !sick_state.is_down() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the failing endpoint is taken out");
    let c = client();
    for _ in 0..8 {
        assert_eq!(get(&c, &proxy.url("/"), "hc.example.com").await.1, "well");
    }
}

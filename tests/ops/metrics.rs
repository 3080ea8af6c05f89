//! `/metrics` by Prometheus' conventions: `promtool check metrics` finds nothing in a real
//! scrape; counts are counters named `_total`; the standard `process_*` series and
//! `switchyard_build_info`; series there at 0 before their first event; one spelling of the
//! `listener` label.

use crate::support;

use std::collections::BTreeSet;

use prometheus_parse::Value;
use serde_json::json;
use support::proxy::*;
use support::scrape::{parse, promtool_findings, sample, value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn scrape(handle: &switchyard::serve::Handle) -> String {
    let url = format!("http://{}/metrics", handle.admin_addr);
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The Host-routed shop, an HTTP service port and a TCP one, on the same web backend / an echo.
async fn every_kind_of_listener() -> (Proxy, Backend, u16, u16) {
    let web = Backend::start("web").await;
    let echo = echo_server().await;
    let (shop, api, db) = (free_port(), free_port(), free_port());
    let proxy = Proxy::start(json!([
        app(
            "/shop",
            shop,
            json!({"HAPROXY_0_VHOST": "shop.example.com"}),
            &[web.port()]
        ),
        app(
            "/api",
            api,
            json!({"HAPROXY_0_MODE": "http"}),
            &[web.port()]
        ),
        app("/db", db, json!({"HAPROXY_0_MODE": "tcp"}), &[echo]),
    ]))
    .await;
    (proxy, web, api, db)
}

#[tokio::test]
async fn a_scrape_with_traffic_on_every_listener_passes_promtool_and_spells_listener_one_way() {
    let (proxy, _web, api, db) = every_kind_of_listener().await;
    let c = client();
    assert_eq!(get(&c, &proxy.url("/"), "shop.example.com").await.0, 200);
    assert_eq!(get(&c, &proxy.url("/"), "nobody.example.com").await.0, 503);
    let by_app_id = c
        .get(format!("http://{}/", proxy.handle.app_id_addr))
        .header("x-marathon-app-id", "/shop")
        .send()
        .await
        .unwrap();
    assert_eq!(by_app_id.status(), 200);
    let service_port = format!("http://127.0.0.1:{api}/");
    assert_eq!(get(&c, &service_port, "x").await.0, 200);
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", db))
        .await
        .unwrap();
    tcp.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    tcp.read_exact(&mut echoed).await.unwrap();

    let text = scrape(&proxy.handle).await;
    assert_eq!(promtool_findings(&text), "", "{text}");

    // `listener` names a kind of listener the same way in every family that has it; the open
    // connections say which port.
    let samples = parse(&text).samples;
    let listeners = |name: &str| -> BTreeSet<String> {
        samples
            .iter()
            .filter(|s| s.metric == name)
            .filter_map(|s| s.labels.get("listener").map(str::to_owned))
            .collect()
    };
    let counted = listeners("switchyard_requests_total");
    let open = listeners("switchyard_connections");
    let kinds = ["app_id", "http", "service_port"].map(str::to_owned);
    assert_eq!(counted, BTreeSet::from(kinds));
    assert!(counted.is_subset(&open), "{counted:?} not in {open:?}");
    let http = proxy.handle.http_addr.unwrap().port();
    for (listener, port) in [("http", http), ("service_port", api), ("tcp", db)] {
        let port = port.to_string();
        let labels = [("listener", listener), ("port", port.as_str())];
        assert!(value(&samples, "switchyard_connections", &labels) >= 1.0);
    }
}

#[tokio::test]
async fn counts_are_counters_and_the_standard_series_are_there() {
    let (proxy, ..) = every_kind_of_listener().await;
    let samples = parse(&scrape(&proxy.handle).await).samples;
    let counter = |name: &str| match sample(&samples, name, &[]) {
        Some(s) => matches!(s.value, Value::Counter(_)),
        None => panic!("no {name}"),
    };
    assert!(counter("switchyard_marathon_stream_connects_total"));
    assert!(counter("switchyard_dcos_logins_total"));
    assert!(counter("process_cpu_seconds_total"));
    for gone in [
        "switchyard_marathon_stream_connects",
        "switchyard_dcos_logins",
    ] {
        assert!(sample(&samples, gone, &[]).is_none(), "{gone} is renamed");
    }
    assert!(value(&samples, "process_resident_memory_bytes", &[]) > 0.0);
    assert!(value(&samples, "process_open_fds", &[]) > 0.0);
    assert!(value(&samples, "process_max_fds", &[]) > 0.0);
    assert!(value(&samples, "process_start_time_seconds", &[]) > 1.7e9);
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(value(&samples, "switchyard_build_info", &version), 1.0);
}

#[tokio::test]
async fn series_are_there_at_zero_before_their_first_event() {
    let (proxy, ..) = every_kind_of_listener().await;
    let samples = parse(&scrape(&proxy.handle).await).samples;
    // Before any request: every backend's upstream counts (`unrouted` has them too, at 0).
    let backends: BTreeSet<_> = samples
        .iter()
        .filter(|s| s.metric == "switchyard_upstream_connect_errors_total")
        .filter_map(|s| s.labels.get("backend"))
        .filter(|&b| b != "unrouted")
        .collect();
    assert_eq!(backends.len(), 3, "{backends:?}");
    for backend in backends {
        for name in [
            "switchyard_upstream_connect_errors_total",
            "switchyard_upstream_retries_total",
            "switchyard_upstream_timeouts_total",
        ] {
            assert_eq!(value(&samples, name, &[("backend", backend)]), 0.0);
        }
    }

    // A backend's first request on a listener: every status class there, the others at 0.
    let c = client();
    assert_eq!(get(&c, &proxy.url("/"), "shop.example.com").await.0, 200);
    let samples = parse(&scrape(&proxy.handle).await).samples;
    let shop = sample(&samples, "switchyard_requests_total", &[("class", "2xx")])
        .expect("the request is counted")
        .labels
        .get("backend")
        .unwrap()
        .to_owned();
    for (class, count) in [
        ("1xx", 0.0),
        ("2xx", 1.0),
        ("3xx", 0.0),
        ("4xx", 0.0),
        ("5xx", 0.0),
    ] {
        let labels = [("listener", "http"), ("backend", &shop), ("class", class)];
        assert_eq!(value(&samples, "switchyard_requests_total", &labels), count);
    }
}

//! Host and path lookups in the table: exact vhosts before wildcards (most specific first),
//! path routes before path-less ones, `HAPROXY_{n}_BACKEND_WEIGHT`, and each host's rules kept
//! together whatever the app order.

use crate::support;

use serde_json::json;
use support::*;

#[test]
fn exact_vhost_beats_wildcard_and_wildcards_go_most_specific_first() {
    let apps = json!([
        host_app(
            "/exact",
            10001,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "api.example.com"}),
            &[(A, 1)]
        ),
        host_app(
            "/wild",
            10002,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "*.example.com"}),
            &[(A, 2)]
        ),
        host_app(
            "/deeper",
            10003,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "*.eu.example.com"}),
            &[(A, 3)]
        ),
    ]);
    let t = table(apps, &options());
    assert_eq!(
        routed(&t, "api.example.com", "/").as_deref(),
        Some("/exact")
    );
    assert_eq!(
        routed(&t, "API.Example.COM:8080", "/x").as_deref(),
        Some("/exact")
    );
    assert_eq!(routed(&t, "www.example.com", "/").as_deref(), Some("/wild"));
    assert_eq!(routed(&t, "a.b.example.com", "/").as_deref(), Some("/wild"));
    assert_eq!(
        routed(&t, "shop.eu.example.com", "/").as_deref(),
        Some("/deeper")
    );
    assert_eq!(routed(&t, "eu.example.com", "/").as_deref(), Some("/wild"));
    assert_eq!(
        routed(&t, "example.com", "/"),
        None,
        "a wildcard needs a label in front"
    );
    assert_eq!(routed(&t, "example.org", "/"), None);
    assert_eq!(routed(&t, "", "/"), None);
}

#[test]
fn exact_host_without_a_matching_path_falls_back_to_a_wildcard() {
    let apps = json!([
        host_app(
            "/api",
            10001,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.com", "HAPROXY_0_PATH": "/api"}),
            &[(A, 1)]
        ),
        host_app(
            "/catchall",
            10002,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "*.example.com"}),
            &[(A, 2)]
        ),
    ]);
    let t = table(apps, &options());
    assert_eq!(
        routed(&t, "shop.example.com", "/api/v1").as_deref(),
        Some("/api")
    );
    assert_eq!(
        routed(&t, "shop.example.com", "/").as_deref(),
        Some("/catchall")
    );
}

#[test]
fn two_apps_on_one_vhost_without_paths_the_smaller_id_takes_everything() {
    let apps = json!([
        host_app(
            "/b-app",
            10002,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shared.example.com"}),
            &[(A, 2)]
        ),
        host_app(
            "/a-app",
            10001,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shared.example.com"}),
            &[(A, 1)]
        ),
    ]);
    let t = table(apps, &options());
    assert_eq!(
        routed(&t, "shared.example.com", "/").as_deref(),
        Some("/a-app")
    );
    assert_eq!(
        routed(&t, "shared.example.com", "/anything").as_deref(),
        Some("/a-app")
    );
}

#[test]
fn path_routes_come_before_path_less_routes_on_the_same_vhost() {
    let apps = json!([
        host_app(
            "/a-web",
            10001,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.com"}),
            &[(A, 1)]
        ),
        host_app(
            "/z-api",
            10002,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.com", "HAPROXY_0_PATH": "/api /v2"}),
            &[(A, 2)]
        ),
    ]);
    let t = table(apps, &options());
    assert_eq!(
        routed(&t, "shop.example.com", "/api/cart").as_deref(),
        Some("/z-api")
    );
    assert_eq!(
        routed(&t, "shop.example.com", "/v2").as_deref(),
        Some("/z-api")
    );
    assert_eq!(
        routed(&t, "shop.example.com", "/apiary").as_deref(),
        Some("/z-api"),
        "path_beg is a plain prefix"
    );
    assert_eq!(
        routed(&t, "shop.example.com", "/").as_deref(),
        Some("/a-web")
    );
    assert_eq!(
        routed(&t, "shop.example.com", "/API").as_deref(),
        Some("/a-web"),
        "case-sensitive without -i"
    );
}

#[test]
fn routes_of_hosts_that_interleave_in_app_order_are_grouped_in_rule_order() {
    // App order interleaves two hosts; each host's rules must come out together, by weight,
    // equal weights in app order.
    let specs = [
        ("/a", "one.example.com", json!({})),
        ("/b", "two.example.com", json!({})),
        ("/c", "one.example.com", json!({"HAPROXY_0_PATH": "/c"})),
        (
            "/d",
            "two.example.com,one.example.com",
            json!({"HAPROXY_0_BACKEND_WEIGHT": "3"}),
        ),
        ("/e", "one.example.com", json!({})),
        ("/f", "*.example.com", json!({})),
    ];
    let apps: Vec<_> = specs
        .iter()
        .zip(10001u16..)
        .map(|((id, vhost, extra), port)| {
            let mut labels = json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": vhost});
            let extra = extra.as_object().unwrap().clone();
            labels.as_object_mut().unwrap().extend(extra);
            host_app(id, port, labels, &[(A, port)])
        })
        .collect();
    let apps = json!(apps);
    let t = table(apps, &options());
    let order: Vec<_> = t
        .http_routes()
        .iter()
        .map(|r| {
            (
                r.vhost.to_string(),
                r.backend.app_id().to_string(),
                r.weight,
            )
        })
        .collect();
    let expected = [
        ("one.example.com", "/d", 3),
        ("one.example.com", "/c", 1),
        ("one.example.com", "/a", 0),
        ("one.example.com", "/e", 0),
        ("two.example.com", "/d", 3),
        ("two.example.com", "/b", 0),
        ("*.example.com", "/f", 0),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(host, app, weight)| (host.to_string(), app.to_string(), *weight))
        .collect();
    assert_eq!(order, expected);
    assert_eq!(routed(&t, "one.example.com", "/c/x").as_deref(), Some("/d"));
    assert_eq!(routed(&t, "two.example.com", "/").as_deref(), Some("/d"));
    assert_eq!(routed(&t, "three.example.com", "/").as_deref(), Some("/f"));
}

#[test]
fn backend_weight_orders_routes_on_a_vhost() {
    // Without weights the path rule (weight raised to 1) would win; a weight of 5 puts the
    // path-less app first, and it then takes everything.
    let apps = json!([
        host_app(
            "/api",
            10001,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "w.example.com", "HAPROXY_0_PATH": "/api"}),
            &[(A, 1)]
        ),
        host_app(
            "/heavy",
            10002,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "w.example.com", "HAPROXY_0_BACKEND_WEIGHT": "5"}),
            &[(A, 2)]
        ),
        host_app(
            "/light",
            10003,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "w.example.com", "HAPROXY_0_PATH": "/light", "HAPROXY_0_BACKEND_WEIGHT": "-1"}),
            &[(A, 3)]
        ),
    ]);
    let t = table(apps, &options());
    assert_eq!(
        routed(&t, "w.example.com", "/api").as_deref(),
        Some("/heavy")
    );
    let order: Vec<_> = t
        .http_routes()
        .iter()
        .map(|r| (r.backend.app_id().to_string(), r.weight))
        .collect();
    assert_eq!(
        order,
        [
            ("/heavy".to_owned(), 5),
            ("/api".to_owned(), 1),
            ("/light".to_owned(), -1)
        ]
    );

    // An explicit weight of 0 with a path is raised to 1, as in Marathon-LB.
    let apps = json!([
        host_app(
            "/a",
            10001,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "z.example.com"}),
            &[(A, 1)]
        ),
        host_app(
            "/b",
            10002,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "z.example.com", "HAPROXY_0_PATH": "/b", "HAPROXY_0_BACKEND_WEIGHT": "0"}),
            &[(A, 2)]
        ),
    ]);
    let t = table(apps, &options());
    assert_eq!(routed(&t, "z.example.com", "/b").as_deref(), Some("/b"));
}

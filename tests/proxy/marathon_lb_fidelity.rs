//! Where apps rely on Marathon-LB's behaviour, Switchyard behaves the same: which listener a
//! redirect applies on, the `Host` a proxypass backend sees, which `Location`s revproxy puts
//! back under its prefix, and ports with no routable task left out (requests fall through).

use crate::support;

use serde_json::{json, Value};
use support::proxy::*;
use switchyard::model::{HealthMemory, ProblemKind};

/// A GET through `url` with a Host (and an `X-Marathon-App-Id` when given): status, the
/// backend that answered, and the JSON it echoed.
async fn get_as(
    c: &reqwest::Client,
    url: impl AsRef<str>,
    host: &str,
    app_id: Option<&str>,
) -> (u16, String, Value) {
    let mut request = c.get(url.as_ref()).header("host", host);
    if let Some(id) = app_id {
        request = request.header("x-marathon-app-id", id);
    }
    send(request).await
}

#[tokio::test]
async fn redirect_to_https_only_on_the_vhost_listener_and_its_path() {
    let (secure, site) = (Backend::start("secure").await, Backend::start("site").await);
    let port = free_port();
    let proxy = Proxy::start(json!([
        app(
            "/secure",
            port,
            json!({"HAPROXY_0_VHOST": "shop.example.com", "HAPROXY_0_PATH": "/account",
            "HAPROXY_0_REDIRECT_TO_HTTPS": "true"}),
            &[secure.port()]
        ),
        app(
            "/site",
            free_port(),
            json!({"HAPROXY_0_VHOST": "shop.example.com"}),
            &[site.port()]
        ),
    ]))
    .await;
    let c = client();
    let r = c
        .get(proxy.url("/account/orders?page=2"))
        .header("host", "shop.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(
        r.headers()["location"],
        "https://shop.example.com/account/orders?page=2"
    );
    // Off the app's path, the host's other app answers: no redirect.
    let (status, backend, _) = get_as(&c, &proxy.url("/"), "shop.example.com", None).await;
    assert_eq!((status, backend.as_str()), (200, "site"));

    // The service port and 9091 keep proxying plain HTTP, whatever the host and path.
    let service = format!("http://127.0.0.1:{port}/account/orders");
    let (status, backend, _) = get_as(&c, &service, "marathon-lb.marathon.mesos:10000", None).await;
    assert_eq!((status, backend.as_str()), (200, "secure"), "service port");
    let by_id = format!("http://{}/anything", proxy.handle.app_id_addr);
    let (status, backend, _) = get_as(&c, &by_id, "x", Some("/secure")).await;
    assert_eq!((status, backend.as_str()), (200, "secure"), "port 9091");
}

#[tokio::test]
async fn root_redirect_applies_to_the_app_s_hosts_only() {
    let web = Backend::start("web").await;
    let port = free_port();
    let _proxy = Proxy::start(json!([app(
        "/home",
        port,
        json!({"HAPROXY_0_VHOST": "home.example.com", "HAPROXY_0_HTTP_BACKEND_REDIR": "/welcome"}),
        &[web.port()]
    )]))
    .await;
    let c = client();
    let service = format!("http://127.0.0.1:{port}/");
    let r = c
        .get(&service)
        .header("host", "home.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["location"].to_str().unwrap()
        ),
        (301, "/welcome"),
        "the app's host, on any listener"
    );
    let (status, backend, _) = get_as(&c, &service, "10.0.0.7:10000", None).await;
    assert_eq!((status, backend.as_str()), (200, "web"), "another host");
}

#[tokio::test]
async fn proxypass_sends_the_first_vhost_as_host_on_every_listener() {
    let web = Backend::start("web").await;
    let port = free_port();
    let proxy = Proxy::start(json!([app(
        "/pp",
        port,
        json!({"HAPROXY_0_VHOST": "pp.example.com,alias.example.com", "HAPROXY_0_PATH": "/api",
               "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/api"}),
        &[web.port()]
    )]))
    .await;
    let c = client();
    let seen_host = |doc: &Value| {
        doc["headers"]["host"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    for (url, host) in [
        (proxy.url("/api/items"), "ALIAS.example.com:80"),
        (
            format!("http://127.0.0.1:{port}/api/items"),
            "10.0.0.7:10000",
        ),
    ] {
        let (status, _, doc) = get_as(&c, &url, host, None).await;
        assert_eq!(status, 200, "{url}");
        assert_eq!(doc["path"], "/items", "{url}: the prefix is stripped");
        assert_eq!(seen_host(&doc), "pp.example.com", "{url} with Host {host}");
    }
    let by_id = format!("http://{}/api/items", proxy.handle.app_id_addr);
    let (_, _, doc) = get_as(&c, &by_id, "x", Some("/pp")).await;
    assert_eq!(seen_host(&doc), "pp.example.com", "port 9091");
}

#[tokio::test]
async fn revproxy_rewrites_absolute_redirects_to_the_app_s_own_vhost() {
    let web = Backend::start("web").await;
    let proxy = Proxy::start(json!([app(
        "/rp",
        free_port(),
        json!({"HAPROXY_0_VHOST": "rp.example.com", "HAPROXY_0_PATH": "/app",
               "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/app",
               "HAPROXY_0_HTTP_BACKEND_REVPROXY_PATH": "/app"}),
        &[web.port()]
    )]))
    .await;
    let c = client();
    for (sent, expected) in [
        ("/landed", "/app/landed"),
        ("http://rp.example.com/landed?x=1", "/app/landed?x=1"),
        ("https://rp.example.com/landed", "/app/landed"),
        ("http://RP.example.com:8080/a/b", "/app/a/b"),
        ("https://rp.example.com:8443", "/app/"),
        (
            "http://other.example.com/landed",
            "http://other.example.com/landed",
        ),
    ] {
        let r = c
            .get(proxy.url("/app/redirect-me"))
            .header("host", "rp.example.com")
            .header("x-location", sent)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        for name in ["location", "content-location"] {
            assert_eq!(r.headers()[name], expected, "{name}: {sent}");
        }
    }
}

/// A host-networking app whose tasks are given as (backend port, alive) pairs; `alive: None`
/// means no health check results.
fn checked_app(id: &str, service_port: u16, labels: Value, tasks: &[(u16, Option<bool>)]) -> Value {
    let mut app = app(id, service_port, labels, &[]);
    app["healthChecks"] = json!([{"protocol": "HTTP", "path": "/health", "portIndex": 0}]);
    app["tasks"] = tasks
        .iter()
        .map(|(port, alive)| {
            let mut task = json!({
                "id": format!("{}.task-{port}", id.trim_start_matches('/')),
                "host": "127.0.0.1", "state": "TASK_RUNNING", "ports": [port],
            });
            if let Some(alive) = alive {
                task["healthCheckResults"] = json!([{ "alive": alive }]);
            }
            task
        })
        .collect();
    app
}

#[tokio::test]
async fn a_port_without_a_routable_task_is_left_out_and_requests_fall_through() {
    let (maint, shop, api) = (
        Backend::start("maintenance").await,
        Backend::start("shop").await,
        Backend::start("api").await,
    );
    let shop_port = free_port();
    let apps = |shop_tasks: &[u16], api_alive: Option<bool>| {
        json!([
            app(
                "/maintenance",
                free_port(),
                json!({"HAPROXY_0_VHOST": "shop.example.com"}),
                &[maint.port()]
            ),
            app(
                "/shop",
                shop_port,
                json!({"HAPROXY_0_VHOST": "shop.example.com",
                "HAPROXY_0_BACKEND_WEIGHT": "10"}),
                shop_tasks
            ),
            checked_app(
                "/api",
                free_port(),
                json!({"HAPROXY_0_VHOST": "shop.example.com",
                "HAPROXY_0_PATH": "/api", "HAPROXY_0_BACKEND_WEIGHT": "20"}),
                &[(api.port(), api_alive)]
            ),
        ])
    };
    let proxy = Proxy::start(apps(&[], Some(false))).await;
    let c = client();
    let url = proxy.url("");
    let on_vhost = |path: &str| get_as(&c, format!("{url}{path}"), "shop.example.com", None);
    let backend = |r: (u16, String, Value)| (r.0, r.1);
    assert_eq!(backend(on_vhost("/").await), (200, "maintenance".into()));
    assert_eq!(
        backend(on_vhost("/api/x").await),
        (200, "maintenance".into()),
        "an unhealthy task is not routable"
    );
    let by_id = format!("http://{}/", proxy.handle.app_id_addr);
    assert_eq!(get_as(&c, &by_id, "x", Some("/shop")).await.0, 503);
    let service = format!("http://127.0.0.1:{shop_port}/");
    assert!(
        c.get(&service).send().await.unwrap_err().is_connect(),
        "no listener on the service port"
    );

    proxy.set_apps(apps(&[shop.port()], Some(true))).await;
    assert_eq!(backend(on_vhost("/").await), (200, "shop".into()));
    assert_eq!(backend(on_vhost("/api/x").await), (200, "api".into()));
    assert_eq!(
        backend(get_as(&c, &by_id, "x", Some("/shop")).await),
        (200, "shop".into())
    );
    assert_eq!(
        backend(get_as(&c, &service, "x", None).await),
        (200, "shop".into())
    );

    // The last task goes: the port leaves again, and its listener with it.
    proxy.set_apps(apps(&[], Some(true))).await;
    assert_eq!(backend(on_vhost("/").await), (200, "maintenance".into()));
    // A kept-alive connection to it stays open (and answers 503); a new one is refused.
    assert_eq!(get_as(&c, &service, "x", None).await.0, 503);
    let fresh = fresh_client();
    assert!(fresh.get(&service).send().await.unwrap_err().is_connect());
}

#[test]
fn routes_reports_no_routable_task_and_nothing_for_ports_with_tasks() {
    let external = |vhost: &str| json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": vhost});
    let apps = json!([
        support::host_app("/empty", 10001, external("e.example.com"), &[]),
        support::host_app("/full", 10002, external("f.example.com"), &[("127.0.0.1", 8080)]),
        {   // IP-per-task, its only task without an address yet.
            "id": "/no-ip",
            "labels": external("n.example.com"),
            "networks": [{"mode": "container", "name": "dcos"}],
            "container": {"type": "MESOS", "portMappings": [{"containerPort": 80, "servicePort": 10004}]},
            "tasks": [{"id": "no-ip.t1", "host": "127.0.0.3", "state": "TASK_RUNNING", "ipAddresses": []}]
        }
    ]);
    let table = support::table(apps, &support::options());
    let problems = support::problems_of(&table, ProblemKind::NoRoutableTask);
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let why = "no task is running (and healthy, where the app has health checks); the port is \
               left out until one is: no vhost, app-id or service-port route";
    assert_eq!(
        lines,
        [
            format!("info    no_routable_task app=/empty port_index=0: {why}"),
            format!("info    no_routable_task app=/no-ip port_index=0: {why}"),
        ]
    );
    assert_eq!(
        table.problems().len(),
        2,
        "nothing else: {:?}",
        table.problems()
    );
    for host in ["e.example.com", "n.example.com"] {
        assert_eq!(support::routed(&table, host, "/"), None, "{host}");
    }
    assert_eq!(
        support::routed(&table, "f.example.com", "/").as_deref(),
        Some("/full")
    );
    assert!(table.service_port(10001).is_none() && table.service_port(10004).is_none());
    assert!(table.service_port(10002).is_some());
    assert_eq!(table.app_ids().len(), 1);
}

/// A rolling replacement as Marathon's default upgrade strategy runs it (start a new task,
/// wait for its health, kill an old one) keeps the route at every step; only a real gap (no
/// task running and healthy, e.g. `minimumHealthCapacity: 0`) leaves the port out.
#[test]
fn a_rolling_replacement_never_leaves_the_port_out() {
    let labels = json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "r.example.com"});
    let options = support::options();
    let mut memory = HealthMemory::default();
    let steps: [&[(u16, Option<bool>)]; 6] = [
        &[(9001, Some(true))],
        &[(9001, Some(true)), (9002, None)],
        &[(9001, Some(true)), (9002, Some(false))],
        &[(9001, Some(true)), (9002, Some(true))],
        // Marathon may list a task without results for a moment (a leader change): its last
        // verdict stands.
        &[(9002, None)],
        &[(9002, Some(true))],
    ];
    for (i, tasks) in steps.iter().enumerate() {
        let apps = json!([checked_app("/r", 10003, labels.clone(), tasks)]);
        let table = support::table_with_memory(apps, &options, &mut memory);
        assert_eq!(
            support::routed(&table, "r.example.com", "/").as_deref(),
            Some("/r"),
            "step {i}: {:?}",
            table.problems()
        );
    }
    let apps = json!([checked_app("/r", 10003, labels, &[(9003, None)])]);
    let table = support::table_with_memory(apps, &options, &mut memory);
    assert_eq!(
        support::routed(&table, "r.example.com", "/"),
        None,
        "a real gap"
    );
}
